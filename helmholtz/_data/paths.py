"""The one place that finds the data folder: ``data_dir``, else ``$HELMHOLTZ_DATA``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import DataError

__all__ = ["ENV_VAR", "resolve_data_dir", "find_data_file"]

#: The environment variable naming the data folder.
ENV_VAR = "HELMHOLTZ_DATA"


def resolve_data_dir(data_dir: Any = None) -> Path:
    """The data folder: ``data_dir``, else ``$HELMHOLTZ_DATA``.

    Raises
    ------
    TypeError
        If ``data_dir`` is not a path.
    DataError
        If neither is given, or the folder does not exist.
    """
    if data_dir is None or data_dir == "":
        env = os.environ.get(ENV_VAR)
        if not env:
            raise DataError(f"no data folder: pass data_dir or set {ENV_VAR}")
        data_dir = env
    if not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir must be a path; got {type(data_dir).__name__}")
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise DataError(f"data_dir {str(path)!r} is not a folder")
    return path


def find_data_file(filename: str, data_dir: Any = None) -> Path:
    """``filename`` inside the data folder (or ``data_dir`` itself when it is that file).

    Raises
    ------
    DataError
        If the file is not there.
    """
    if isinstance(data_dir, (str, os.PathLike)) and Path(data_dir).expanduser().is_file():
        path = Path(data_dir).expanduser()
        if path.name == filename:
            return path
        raise DataError(f"{str(path)!r} is not a {filename}")
    path = resolve_data_dir(data_dir) / filename
    if not path.is_file():
        raise DataError(f"{filename} not found in {str(path.parent)!r} (pass data_dir= / --data-dir or set {ENV_VAR})")
    return path
