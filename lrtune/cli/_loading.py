"""Load the user's ``module:function`` (or ``path/to/file.py:function``) for the CLI: the one
loader of ``lrtune find``, ``lrtune tune`` and ``lrtune worker``."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
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
