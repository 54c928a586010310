"""Fingerprints of a trial: what data and which code produced a result.

Every stored trial carries the SHA-256 of the arrays it trained and tested
on, the SHA-256 of the source data it was made from, and the versions of
everything that can change the numbers (helmholtz and its git revision,
Pillow / libjpeg-turbo, NumPy, torch, Python), the full recipe as JSON and
the device name. :func:`helmholtz.experiments.report` warns when the rows it
compares differ in any of them, and a resumed sweep refuses source data that
changed under the same name.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .._version import __version__

__all__ = ["array_sha256", "code_fingerprint", "device_name", "DATA_COLUMNS", "CODE_COLUMNS"]

#: Columns that say which data a row was trained on.
DATA_COLUMNS = ("source_sha256", "data_sha256")
#: Columns that say which code produced a row.
CODE_COLUMNS = ("helmholtz_version", "git_revision", "pillow_version", "libjpeg_turbo_version", "numpy_version", "torch_version", "python_version")


def array_sha256(arrays: Iterable[Any]) -> str:
    """SHA-256 over arrays (NumPy, or torch tensors on any device), with their dtypes and shapes.

    Two sequences hash equal exactly when they hold the same values in the
    same dtypes and shapes, in the same order.
    """
    h = hashlib.sha256()
    for a in arrays:
        if type(a).__module__.startswith("torch"):
            a = a.detach().cpu().numpy()
        elif isinstance(a, (list, tuple)):  # ragged: a list of arrays (e.g. audio clips)
            h.update(f"list:{len(a)};".encode())
            h.update(array_sha256(a).encode())
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def _git_revision() -> str | None:
    """The git revision of the checkout helmholtz is imported from (``-dirty`` with local changes), or None."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", "helmholtz", "csrc"],
                               capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


@functools.lru_cache(maxsize=1)
def _pillow_versions() -> tuple[str | None, str | None]:
    try:
        import PIL
        from PIL import features
    except ImportError:
        return None, None
    try:
        turbo = features.version("libjpeg_turbo") or features.version_codec("jpg")
    except Exception:  # noqa: BLE001 - an old Pillow without the feature query
        turbo = None
    return PIL.__version__, turbo


def code_fingerprint() -> dict[str, str | None]:
    """Versions of the code that computes a trial: the :data:`CODE_COLUMNS` of a row."""
    import torch

    pillow, turbo = _pillow_versions()
    return {
        "helmholtz_version": __version__,
        "git_revision": _git_revision(),
        "pillow_version": pillow,
        "libjpeg_turbo_version": turbo,
        "numpy_version": np.__version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
    }


def device_name(device: str) -> str:
    """``"cpu (<processor>)"`` or ``"cuda:0 (NVIDIA H100 80GB HBM3)"``."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return f"cpu ({platform.processor() or platform.machine()})"


def recipe_json(recipe: dict[str, Any]) -> str:
    """A recipe description as canonical JSON (sorted keys), for storage and comparison."""
    return json.dumps(recipe, sort_keys=True, default=str)


__all__.append("recipe_json")
