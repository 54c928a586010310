"""How sure a reported accuracy is: intervals from the number of test images and from the spread over seeds.

An accuracy measured on ``n`` test images is a proportion with binomial
sampling error; :func:`wilson_interval` gives its Wilson score interval
(Wilson 1927; Newcombe 1998, method 3), which, unlike the normal
approximation ``p +- z sqrt(p(1-p)/n)``, stays inside [0, 1] and keeps its
coverage near 0 and 1 and at small ``n``.

Seeds measure another source of noise, the training run itself.
:func:`seed_interval` gives the Student t interval of the mean over seeds,
``mean +- t(level, k-1) * sd / sqrt(k)`` for ``k >= 2`` seeds, cut to
[0, 1] for accuracies; the quantile
comes from :func:`t_quantile`, exact for whole degrees of freedom, so that
pandas and matplotlib are all a report needs (no SciPy).

Both functions take scalars or arrays and give NaN where an input is missing
(NaN), so whole DataFrame columns pass through them.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np

__all__ = ["LEVEL", "wilson_interval", "seed_interval", "t_quantile", "intervals_overlap"]

#: The confidence level of every interval in a report.
LEVEL = 0.95


def _level(level: Any) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not 0 < float(level) < 1:
        raise ValueError(f"level must be a number in (0, 1); got {level!r}")
    return float(level)


def _missing(v: Any) -> bool:
    """None or pandas' NA (a nullable column's missing value), without importing pandas."""
    return v is None or type(v).__name__ == "NAType"


def _floats(values: Any, name: str) -> np.ndarray:
    """``values`` as a float64 array, missing values as NaN; bools are not numbers."""
    if hasattr(values, "to_numpy") and hasattr(values, "dtype"):  # a pandas Series or array
        if str(values.dtype) in ("bool", "boolean"):
            raise TypeError(f"{name} must be numbers, not bools")
        values = values.to_numpy(dtype=object)
    arr = np.asarray(values)
    if arr.dtype == bool:
        raise TypeError(f"{name} must be numbers, not bools; got {values!r}")
    if arr.dtype == object:
        items = arr.ravel().tolist()
        if any(isinstance(v, (bool, np.bool_)) for v in items):
            raise TypeError(f"{name} must be numbers, not bools; got {values!r}")
        arr = np.array([math.nan if _missing(v) else v for v in items], dtype=object).reshape(arr.shape)
    try:
        return arr.astype(np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be numbers; got {values!r}") from None


def wilson_interval(accuracy: Any, n: Any, level: float = LEVEL) -> tuple[Any, Any]:
    """The Wilson score interval of an accuracy measured on ``n`` images.

    Parameters
    ----------
    accuracy : float or array_like
        Fractions correct, in [0, 1] (NaN where unknown).
    n : int or array_like
        The number of images each accuracy was measured on: whole numbers >= 1
        (NaN where unknown).
    level : float
        Confidence level (default :data:`LEVEL`, 95%).

    Returns
    -------
    (low, high) : tuple of float or of ndarray
        Floats for scalar input, else arrays of the broadcast shape; NaN where
        ``accuracy`` or ``n`` is NaN.

    Raises
    ------
    ValueError
        An accuracy outside [0, 1], or an ``n`` that is not a whole number >= 1.
    TypeError
        Bools or non-numbers.

    Examples
    --------
    >>> low, high = wilson_interval(0.192, 500)      # 96 of 500 images
    >>> round(low, 4), round(high, 4)
    (0.1599, 0.2288)
    """
    z = NormalDist().inv_cdf(0.5 + _level(level) / 2)
    p = _floats(accuracy, "accuracy")
    m = _floats(n, "n")
    bad_p = ~np.isnan(p) & ((p < 0) | (p > 1))
    if bad_p.any():
        raise ValueError(f"accuracy must be in [0, 1]; got {p[bad_p].ravel()[0]!r}")
    bad_n = ~np.isnan(m) & ((m < 1) | (m != np.floor(m)) | np.isinf(m))
    if bad_n.any():
        raise ValueError(f"n must be a whole number of images >= 1; got {m[bad_n].ravel()[0]!r}")
    with np.errstate(invalid="ignore"):
        z2n = z * z / m
        centre = (p + z2n / 2) / (1 + z2n)
        half = z / (1 + z2n) * np.sqrt(p * (1 - p) / m + z2n / (4 * m))
        low, high = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
        known = ~np.isnan(m)
        low, high = np.where((p == 0) & known, 0.0, low), np.where((p == 1) & known, 1.0, high)  # exact where rounding leaves 1e-17
    if np.ndim(low) == 0:
        return float(low), float(high)
    return low, high


def _t_two_sided(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with ``df`` (whole) degrees of freedom: Abramowitz & Stegun 26.7.3-4."""
    theta = math.atan(t / math.sqrt(df))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2:  # odd: (2/pi) (theta + sin cos (1 + 2/3 cos^2 + 2.4/(3.5) cos^4 + ...))
        total, term = 0.0, math.cos(theta)
        for k in range(1, (df - 1) // 2 + 1):
            total += term
            term *= c2 * (2 * k) / (2 * k + 1)
        return 2 / math.pi * (theta + s * total)
    total, term = 0.0, 1.0  # even: sin (1 + 1/2 cos^2 + 1.3/(2.4) cos^4 + ...)
    for k in range(1, df // 2 + 1):
        total += term
        term *= c2 * (2 * k - 1) / (2 * k)
    return s * total


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (``df`` a whole number >= 1).

    Exact up to float rounding (bisection on the closed-form distribution
    function for whole ``df``); ``t_quantile(0.975, 1)`` is 12.7062...
    """
    if isinstance(df, bool) or not isinstance(df, (int, np.integer)) or df < 1:
        raise ValueError(f"df must be a whole number >= 1; got {df!r}")
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating)) or not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1); got {p!r}")
    if p == 0.5:
        return 0.0
    target = abs(2 * p - 1)  # P(|T| <= t) for the upper tail's t
    lo, hi = 0.0, 1.0
    while _t_two_sided(hi, int(df)) < target:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if _t_two_sided(mid, int(df)) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * hi:
            break
    t = (lo + hi) / 2
    return t if p > 0.5 else -t


def seed_interval(mean: Any, sd: Any, seeds: Any, level: float = LEVEL, bounds: tuple[float, float] | None = (0.0, 1.0)) -> tuple[Any, Any]:
    """The Student t interval of a mean over ``seeds`` runs: ``mean +- t(level, seeds-1) * sd / sqrt(seeds)``.

    Parameters
    ----------
    mean, sd : float or array_like
        The mean and the sample standard deviation (``ddof=1``, pandas' ``std``) over seeds.
    seeds : int or array_like
        How many seeds each mean is over; fewer than 2 gives NaN (no spread to measure).
    level : float
        Confidence level (default :data:`LEVEL`, 95%).
    bounds : (float, float) or None
        Where the quantity can lie (default ``(0, 1)``, an accuracy): the
        interval is cut to it, which loses no coverage since the true mean lies
        there too. ``None`` leaves the t interval as it is.

    Returns
    -------
    (low, high) : tuple of float or of ndarray

    Examples
    --------
    >>> low, high = seed_interval(0.64, 0.02828, 2)     # two seeds: 0.62 and 0.66
    >>> round(low, 3), round(high, 3)
    (0.386, 0.894)
    >>> seed_interval(0.64, 0.02828, 1)                 # one seed: no spread to measure
    (nan, nan)
    """
    lv = _level(level)
    mu, s, k = _floats(mean, "mean"), _floats(sd, "sd"), _floats(seeds, "seeds")
    shape = np.broadcast_shapes(mu.shape, s.shape, k.shape)
    kb = np.broadcast_to(k, shape)
    tq = np.full(shape, math.nan)
    for count in {int(v) for v in kb.ravel() if v == v and v >= 2}:
        tq[kb == count] = t_quantile(0.5 + lv / 2, count - 1)
    with np.errstate(invalid="ignore"):
        half = tq * s / np.sqrt(np.where(kb >= 2, kb, math.nan))
        low, high = mu - half, mu + half
        if bounds is not None:
            low, high = np.clip(low, *bounds), np.clip(high, *bounds)
    if np.ndim(low) == 0:
        return float(low), float(high)
    return low, high


def intervals_overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two closed intervals ``(low, high)`` share a point (touching counts as overlapping)."""
    return a[0] <= b[1] and b[0] <= a[1]
