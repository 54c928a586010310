"""Pieces the benchmark scripts share: finding the data and timing."""

from __future__ import annotations

import os
import time
from pathlib import Path


def cifar_path(data_dir: str | None = None) -> Path | None:
    """cifar10.npz from ``data_dir``, ``$HELMHOLTZ_DATA`` or ../shared/data beside the checkout; None if absent."""
    for base in (data_dir, os.environ.get("HELMHOLTZ_DATA"), Path(__file__).resolve().parents[2] / "shared" / "data"):
        if base and (Path(base) / "cifar10.npz").exists():
            return Path(base) / "cifar10.npz"
    return None


def best_time(fn, repeats: int) -> float:
    """The fastest of ``repeats`` calls of ``fn``, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
