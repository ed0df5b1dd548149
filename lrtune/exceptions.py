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


class ObjectiveFailedError(LrtuneError, RuntimeError):
    """The objective raised the same exception in the first trials of a study.

    A deterministic bug (a shape error, a typo) fails every configuration alike, so the study
    stops instead of spending its budget on failures. The message shows the exception at the
    user's line; the failed trials stay recorded, and the study resumes once the bug is fixed.
    """


class LrtuneWarning(UserWarning):
    """Base class of lrtune's warnings, so users can filter them all at once."""


class StrategyError(LrtuneError, TypeError):
    """A search strategy broke its contract (see :class:`lrtune.strategies.Strategy`): a bug in
    the strategy that every ask would hit, so the study stops at once."""


class UnknownStrategyError(LrtuneError, LookupError):
    """A stored study names a strategy that is neither built in nor registered in this process."""

class StudyExtendedWarning(LrtuneWarning):
    """A study was reopened with a larger budget than it had: it runs until that is spent."""
