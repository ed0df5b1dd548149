"""Load the user's ``module:function`` (or ``path/to/file.py:function``) for the CLI."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from lrtune.exceptions import InvalidParameterError


def load_object(spec: str, what: str = "TARGET") -> Any:
    """The object named by ``module:attr``; the current directory is importable, like ``python -m``."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise InvalidParameterError(
            f"{what} must look like 'module:function' or 'file.py:function'. Got {spec!r} instead.")
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise InvalidParameterError(f"{what}: no file {module_name!r}.")
        loader_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(loader_spec)
        loader_spec.loader.exec_module(module)
    else:
        if "" not in sys.path:
            sys.path.insert(0, "")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            raise InvalidParameterError(f"{what}: cannot import {module_name!r} ({err}).") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise InvalidParameterError(f"{what}: {module_name!r} has no attribute {attr!r}.") from None
