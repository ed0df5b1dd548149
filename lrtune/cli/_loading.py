"""Load the user's ``module:function`` (or ``path/to/file.py:function``) for the CLI: the one
loader of ``lrtune find``, ``lrtune tune`` and ``lrtune worker``."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lrtune.exceptions import InvalidParameterError


def load_object(spec: str, what: str = "TARGET") -> Any:
    """The object named by ``module:attr`` or ``file.py:attr``.

    As ``python file.py`` and ``python -m module`` would: a file's own folder is importable (so
    it may import a sibling module), and a module is found from the current directory.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise InvalidParameterError(
            f"{what} must look like 'module:function' or 'file.py:function'. Got {spec!r} instead.")
    if module_name.endswith(".py"):
        module = _load_file(Path(module_name), what)
    else:
        _importable(os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            raise InvalidParameterError(f"{what}: cannot import {module_name!r} ({err}).") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise InvalidParameterError(f"{what}: {module_name!r} has no attribute {attr!r}.") from None


def load_function(spec: str, what: str, requirement: str, arguments: int) -> Callable[..., Any]:
    """The callable named by ``spec``, checked to take ``arguments`` positional arguments, so a
    wrong target fails here in one line instead of in every call (every trial of a study).

    ``requirement`` says what it must be, for the error. A callable whose signature cannot be
    read (some builtins) is let through: its call will say.
    """
    function = load_object(spec, what)
    if not callable(function):  # named by its type: its repr may be a whole data set
        raise _not_a(what, requirement, f"it is of type {type(function).__name__}", spec)
    try:
        inspect.signature(function).bind(*[None] * arguments)
    except TypeError as err:  # it takes other arguments
        raise _not_a(what, requirement, str(err), spec) from None
    except ValueError:  # no signature to read
        pass
    return function


def _not_a(what: str, requirement: str, why: str, spec: str) -> InvalidParameterError:
    """The error for a ``spec`` that names the wrong kind of object, in the words of the command
    line: the argument as its help names it (``TARGET``), not a Python parameter."""
    return InvalidParameterError(f"{what} must be {requirement} ({why}). Got {spec!r} instead.")


def _load_file(path: Path, what: str) -> Any:
    if not path.is_file():
        raise InvalidParameterError(f"{what}: no file {str(path)!r}.")
    path = path.resolve()
    _importable(str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None  # a .py file path always has a spec
    module = importlib.util.module_from_spec(spec)
    registered = sys.modules.setdefault(path.stem, module) is module  # never shadow a module
    try:  # registered, as an import would: dataclasses and pickling look a module up by name
        spec.loader.exec_module(module)
    except BaseException:
        if registered:
            del sys.modules[path.stem]
        raise
    return module


def _importable(folder: str) -> None:
    if folder not in sys.path:
        sys.path.insert(0, folder)
