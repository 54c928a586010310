"""Summaries of a learning curve (test accuracy per epoch), as the authors define them."""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["convergence_epoch", "authors_accuracy", "best_epoch"]


def _curve(accuracy: Sequence[float]) -> np.ndarray:
    acc = np.asarray(accuracy, dtype=np.float64)
    if acc.ndim != 1 or acc.size == 0:
        raise ValueError(f"accuracy must be a non-empty 1-D curve (one value per epoch); got shape {acc.shape}")
    if not np.isfinite(acc).all():
        raise ValueError("accuracy must hold finite values")
    return acc


def convergence_epoch(accuracy: Sequence[float], window: int = 10, ratio: float = 0.99) -> int | None:
    """The authors' convergence epoch, counted from 1.

    The first 0-based epoch ``i`` with ``mean(acc[i:i+window]) > ratio * max(acc)``,
    returned as ``i + 1``.

    Edge cases, as the definition implies:

    * near the end the window is shorter (``acc[i:i+window]`` is a slice), so a
      curve that ends on its maximum converges at the latest on its last epoch;
    * the comparison is strict: a curve that is 0 everywhere never converges;
    * a curve that peaks early and falls away may have no qualifying window;
    * in both of the last two cases the result is None ("did not converge").

    Raises
    ------
    ValueError
        For an empty curve, non-finite values, ``window < 1`` or ``ratio`` outside (0, 1].
    """
    acc = _curve(accuracy)
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be an int >= 1; got {window!r}")
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1]; got {ratio!r}")
    target = ratio * acc.max()
    for i in range(acc.size):
        if acc[i : i + window].mean() > target:
            return i + 1
    return None


def authors_accuracy(accuracy: Sequence[float], top: int = 10) -> float:
    """The authors' audio "accuracy": the mean of the ``top`` best epochs (all of them if fewer ran)."""
    acc = np.sort(_curve(accuracy))[::-1]
    return float(acc[:top].mean())


def best_epoch(accuracy: Sequence[float]) -> int:
    """The epoch (from 1) with the highest accuracy; the first one on ties."""
    return int(np.argmax(_curve(accuracy))) + 1
