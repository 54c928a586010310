"""Checks shared by the image and audio data sets: labels and subset sizes.

A data set is validated once, when it is built (by a loader or by hand);
everything downstream trusts it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError

__all__ = ["integer_labels", "check_subset_size"]


def integer_labels(y: Any, count: int, where: str, num_classes: int | None = None) -> np.ndarray:
    """``y`` as int64 labels, refusing anything that is not already whole numbers in range.

    Parameters
    ----------
    y : array_like
        One label per example, of an integer dtype. Float labels are refused
        rather than truncated (``2.7`` is not a class); so are booleans.
    count : int
        How many labels there must be.
    where : str
        What the labels are, for messages (e.g. ``"cifar10 '/data/cifar10.npz': y_train"``).
    num_classes : int, optional
        Labels must lie in ``0 .. num_classes - 1``; without it they must be >= 0.

    Raises
    ------
    DataError
        Naming ``where``: a non-integer dtype, the wrong shape, a negative
        label or one outside the classes.
    """
    y = np.asarray(y)
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: labels must be integers; got dtype {y.dtype} (convert them on purpose, float labels are never truncated)")
    if y.shape != (count,):
        raise DataError(f"{where}: expected one label per example, shape ({count},); got shape {y.shape}")
    if y.size:
        low, high = int(y.min()), int(y.max())
        if low < 0:
            raise DataError(f"{where}: labels must be >= 0; found {low}")
        if num_classes is not None and high >= num_classes:
            raise DataError(f"{where}: labels outside 0..{num_classes - 1} (one per class): found {high}")
    return y.astype(np.int64)


def check_subset_size(size: Any, available: int, name: str, split: str) -> int | None:
    """``size`` as an int (or ``None`` for all), refusing a subset larger than its split.

    Parameters
    ----------
    size : int or None
        The requested number of examples.
    available : int
        How many the split holds.
    name : str
        The argument's name, for messages (``"train_subset"``).
    split : str
        The split, for messages (``"train"``).

    Raises
    ------
    TypeError
        If ``size`` is not an int or None.
    ValueError
        If ``size`` < 1 or ``size`` > ``available``: asking for more
        examples than exist is an error, never a silent "use them all".
    """
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"{name} must be an int or None; got {type(size).__name__}")
    if size < 1:
        raise ValueError(f"{name} must be >= 1; got {size}")
    if size > available:
        raise ValueError(f"{name}={size} is larger than the {split} split, which holds {available}; ask for at most {available}, or leave it unset for all")
    return int(size)
