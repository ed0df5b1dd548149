"""Say where the user's code failed: the last traceback frame in the user's own file.

A shape error raised deep inside torch is reported at the user's line that called torch (the
line to fix), not at torch's file: frames in the standard library, in installed packages and in
lrtune itself are skipped. When no frame is the user's (a built-in task), the last one is used,
less lrtune's pass-through wrappers (:func:`transparent`): an objective that cannot take the
trial fails at the wrapper's call, which is not where the mistake is.
"""

from __future__ import annotations

import os
import sysconfig
import traceback
from collections.abc import Callable
from pathlib import Path
from types import CodeType
from typing import TypeVar

_NOT_USER_CODE = tuple(
    os.path.join(os.path.realpath(p), "")
    for p in {*(sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")),
              str(Path(__file__).parent)})

_TRANSPARENT: set[CodeType] = set()

F = TypeVar("F", bound=Callable[..., object])


def transparent(function: F) -> F:
    """Mark ``function`` as a pass-through to the user's code: its frame is never reported."""
    _TRANSPARENT.add(function.__code__)
    return function


def user_frame(err: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of ``err``'s traceback that is in the user's code."""
    frames = traceback.StackSummary.extract(
        (frame, line) for frame, line in traceback.walk_tb(err.__traceback__)
        if frame.f_code not in _TRANSPARENT)
    for frame in reversed(frames):
        path = os.path.realpath(frame.filename)
        if not frame.filename.startswith("<") and not path.startswith(_NOT_USER_CODE):
            return frame
    return frames[-1] if frames else None


def describe(err: BaseException) -> str:
    """``Type: message (at file:line in function: the line)``, at the user's frame."""
    text = f"{type(err).__name__}: {err}"
    frame = user_frame(err)
    if frame is None:
        return text
    where = frame.filename
    if os.path.realpath(where).startswith(os.path.join(os.getcwd(), "")):
        where = os.path.relpath(where)
    code = f": {frame.line}" if frame.line else ""
    return f"{text} (at {where}:{frame.lineno} in {frame.name}{code})"
