"""Every exception helmholtz raises on purpose, in one place.

The types derive from the built-in exception a caller would catch anyway
(``ValueError`` for bad data, ``ImportError`` for a missing extra, ...), so
``except ValueError`` keeps working, while ``except helmholtz.HelmholtzError``
catches all of them. This module imports nothing from helmholtz.
"""

from __future__ import annotations

__all__ = [
    "HelmholtzError",
    "BackendUnavailable",
    "MissingExtra",
    "DataError",
    "StoreError",
    "ForeignFileError",
    "TrialError",
    "ClusterUnavailable",
    "DISTRIBUTION",
    "install_hint",
]

#: The name helmholtz is installed under (``pip install helmholtz-ml``); the import name is ``helmholtz``.
DISTRIBUTION = "helmholtz-ml"


def install_hint(extra: str) -> str:
    """The exact command that installs ``extra``: ``pip install 'helmholtz-ml[extra]'``."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


class HelmholtzError(Exception):
    """Base class of every error helmholtz raises on purpose."""


class BackendUnavailable(HelmholtzError, RuntimeError):
    """A codec backend or compute device was asked for that cannot run here; the message names the fix."""


class MissingExtra(HelmholtzError, ImportError):
    """An optional dependency is missing; the message gives the exact ``pip install`` line.

    Attributes
    ----------
    extra : str
        The extra that provides it (``"experiments"``, ``"audio"``, ...); when
        several are missing at once, their comma-separated list (``"experiments,audio"``).
    module : str
        The module that could not be imported.
    """

    def __init__(self, message: str, *, extra: str, module: str) -> None:
        super().__init__(message, name=module)
        self.extra = extra
        self.module = module


class DataError(HelmholtzError, ValueError):
    """A data file is missing, corrupt (checksum, shape, label or size mismatch) or unsafe to read."""


class StoreError(HelmholtzError, RuntimeError):
    """The results database cannot be used: not helmholtz's, another version, or not writable."""


class ForeignFileError(StoreError):
    """A file that helmholtz did not create is where its database should be; it was left untouched."""


class TrialError(HelmholtzError, RuntimeError):
    """A trial failed to train (for example its loss diverged)."""


class ClusterUnavailable(HelmholtzError, ConnectionError):
    """No Ray cluster answers at the address given; the message names it."""
