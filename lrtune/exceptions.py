"""Exceptions and warnings raised by lrtune.

Every error inherits from :class:`LrtuneError` *and* from the built-in exception a caller would
expect (``ValueError`` for bad input, ...), so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class LrtuneError(Exception):
    """Base class of every exception raised by lrtune."""


class InvalidParameterError(LrtuneError, ValueError):
    """A public function or constructor received a parameter it cannot use.

    Raised before anything is changed. The message has one shape:
    ``The 'end_lr' parameter of find() must be a float > 0. Got -1 instead.``
    """


class ObjectiveError(LrtuneError, TypeError):
    """The user's objective broke its contract (for example it returned something not a number).

    Unlike an exception raised while training, which fails one trial, this is a bug in the
    objective that every trial would hit, so the study stops at once.
    """


class LrtuneWarning(UserWarning):
    """Base class of lrtune's warnings, so users can filter them all at once."""


class StudyExtendedWarning(LrtuneWarning):
    """A study was reopened with a larger budget than it had: it runs until that is spent."""
