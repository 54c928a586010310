"""Fixtures for the experiment-layer tests (models, data, sweep, store, report, Ray)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent


def _data_dir() -> Path | None:
    for candidate in (os.environ.get("HELMHOLTZ_DATA"), REPO.parent / "shared" / "data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data folder ($HELMHOLTZ_DATA or ../shared/data); skips when absent."""
    d = _data_dir()
    if d is None or not (d / "cifar10.npz").is_file():
        pytest.skip("real data not found: set HELMHOLTZ_DATA to a folder with cifar10.npz")
    return d


def data_file(name: str) -> Path:
    """The real data file ``name`` ($HELMHOLTZ_DATA or ../shared/data); skips the test when absent."""
    d = _data_dir()
    if d is None or not (d / name).is_file():
        pytest.skip(f"real data not found: set HELMHOLTZ_DATA to a folder with {name}")
    return d / name


@pytest.fixture(scope="session")
def fsdd_path() -> Path:
    """The real fsdd.npz; skips when absent."""
    return data_file("fsdd.npz")


@pytest.fixture
def tiny_cifar_dir(tmp_path: Path) -> Path:
    """A folder holding a small synthetic cifar10.npz (structured images, 10 classes)."""
    rng = np.random.default_rng(0)

    def make(n):
        y = np.arange(n) % 10
        x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        x[:, :, :, 0] = (y * 25)[:, None, None].astype(np.uint8)  # a class-dependent red channel
        return x, y.astype(np.uint8)

    x_train, y_train = make(64)
    x_test, y_test = make(32)
    np.savez(tmp_path / "cifar10.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return tmp_path
