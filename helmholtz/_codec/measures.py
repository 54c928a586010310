"""Information measures of JPEG-compressed image batches (public face: :mod:`helmholtz.info`).

Every measure is vectorised over a batch and returns one value per image
(or per image and component / frequency). With ``H, W`` the image size,
``N`` the batch size and ``p(v)`` the relative frequency of value ``v``:

=====================  ==========================================================
measure                formula
=====================  ==========================================================
scan bits per pixel    ``bits / (H W)``, ``bits`` from :func:`helmholtz.jpeg.bits`
                       (entropy-coded data before stuffing and padding)
file bits per pixel    ``8 len(file) / (H W)``: headers + scan bytes with 0xFF
                       stuffing and padding + EOI, from :func:`helmholtz.jpeg.encode`
coefficient entropy    ``H = -sum_v p(v) log2 p(v)`` over the quantised
                       coefficients (real blocks; overall, per component, or
                       per component and frequency), in bits per coefficient
pixel entropy          the same over the uint8 pixel values (all channels)
PSNR                   ``10 log10(255^2 / MSE)``, ``MSE`` the mean squared error
                       against the originals over all pixels and channels
zero fraction          share of quantised coefficients equal to 0
=====================  ==========================================================

:func:`dataset_report` gathers them per quality into a pandas DataFrame,
and :func:`plot_report` draws bits per pixel and PSNR against quality;
``helmholtz info`` prints that table for a data set and writes CSV / JSON / PNG.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from .._extras import require
from . import entropy, lossy, ragged
from .arrays import as_batch, as_quality_list, to_host_int16
from .container import Coefficients, check_components

__all__ = [
    "scan_bits_per_pixel",
    "file_bits_per_pixel",
    "coefficient_entropy",
    "pixel_entropy",
    "psnr",
    "zero_fraction",
    "shannon_entropy",
    "dataset_report",
    "plot_report",
    "DEFAULT_QUALITIES",
]

DEFAULT_QUALITIES = (1, 5, 10, 15, 20, 25, 50, 75, 100)


# --------------------------------------------------------------------------
# Entropy of rows of integers
# --------------------------------------------------------------------------


def shannon_entropy(values: Any, axis: int = -1) -> np.ndarray:
    """Zeroth-order Shannon entropy, in bits per symbol, along ``axis``.

    ``H = -sum_v p(v) log2 p(v)`` where ``p(v)`` is the share of entries
    equal to ``v`` among those along ``axis``.

    Parameters
    ----------
    values : array_like
        Integer array (any integer dtype).
    axis : int
        The axis holding the samples of one distribution.

    Returns
    -------
    ndarray
        float64, ``values.shape`` without ``axis``.
    """
    v = np.asarray(values)
    if not np.issubdtype(v.dtype, np.integer):
        raise TypeError(f"values must be integers; got dtype {v.dtype}")
    v = np.moveaxis(v, axis, -1)
    shape, m = v.shape[:-1], v.shape[-1]
    if m == 0:
        raise ValueError("values has no samples along axis")
    rows = v.reshape(-1, m)
    if rows.shape[0] == 0:
        return np.zeros(shape)
    lo, hi = int(rows.min()), int(rows.max())
    k = hi - lo + 1
    out = np.empty(rows.shape[0])
    chunk = max(1, (1 << 22) // max(k, m))
    for s in range(0, rows.shape[0], chunk):
        r = rows[s : s + chunk].astype(np.int64) - lo
        n = r.shape[0]
        counts = np.bincount((r + (np.arange(n) * k)[:, None]).ravel(), minlength=n * k).reshape(n, k)
        p = counts / m
        with np.errstate(divide="ignore", invalid="ignore"):
            out[s : s + n] = -np.where(counts > 0, p * np.log2(p), 0.0).sum(axis=1)
    return out.reshape(shape) + 0.0  # no -0.0


# --------------------------------------------------------------------------
# Measures
# --------------------------------------------------------------------------


def _pixels(coefs: Coefficients) -> int:
    return coefs.height * coefs.width


def scan_bits_per_pixel(
    images_or_coefficients: Any,
    quality: int | Sequence[int] | None = None,
    *,
    subsampling: str | None = None,
    optimize: bool = False,
    backend: str = "auto",
) -> np.ndarray:
    """Entropy-coded bits per pixel: ``bits / (H W)``, float64 ``(N,)``.

    ``bits`` is :func:`helmholtz.jpeg.bits` (scan data before byte stuffing
    and padding). Arguments as for :func:`helmholtz.jpeg.bits`.
    """
    coefs = entropy.as_container(images_or_coefficients, quality, subsampling, _coef_backend(backend))
    return entropy.bits(coefs, optimize=optimize, backend=backend) / _pixels(coefs)


def file_bits_per_pixel(
    images_or_coefficients: Any,
    quality: int | Sequence[int] | None = None,
    *,
    subsampling: str | None = None,
    optimize: bool = False,
    backend: str = "auto",
) -> np.ndarray:
    """Whole-file bits per pixel: ``8 len(file) / (H W)``, float64 ``(N,)``.

    The file is the Pillow-identical JFIF of :func:`helmholtz.jpeg.encode`:
    header bytes (623 for colour, 330 for grayscale with standard tables) +
    scan bytes with 0xFF stuffing and 1-bit padding + 2 bytes of EOI.
    """
    coefs = entropy.as_container(images_or_coefficients, quality, subsampling, _coef_backend(backend))
    sizes = np.array([len(f) for f in entropy.encode(coefs, optimize=optimize, backend=backend)], dtype=np.float64)
    return 8.0 * sizes / _pixels(coefs)


def _blocks(component) -> np.ndarray:
    """(N, bh, bw, 8, 8) -> (N, blocks, 64) as a host int16 array."""
    c = to_host_int16(component)
    return c.reshape(c.shape[0], -1, 64)


def coefficient_entropy(coefs: Coefficients, *, by: str = "overall", pooled: bool = False) -> np.ndarray:
    """Zeroth-order entropy of the quantised coefficients, in bits per coefficient.

    ``H = -sum_v p(v) log2 p(v)``, ``p(v)`` the share of coefficients equal
    to ``v`` (real blocks only, as stored in the file).

    Parameters
    ----------
    coefs : Coefficients
        From :func:`helmholtz.jpeg.coefficients`.
    by : {"overall", "component", "frequency"}
        ``"overall"``: all coefficients of an image together, shape ``(N,)``;
        ``"component"``: per component, ``(N, C)``; ``"frequency"``: per
        component and frequency ``(u, v)`` over that image's blocks,
        ``(N, C, 8, 8)`` (natural order).
    pooled : bool
        Count over the whole batch instead of per image (the ``N`` axis is dropped).

    Returns
    -------
    ndarray
        float64 entropies.
    """
    check_components(coefs)
    if by not in ("overall", "component", "frequency"):
        raise ValueError(f"by must be 'overall', 'component' or 'frequency'; got {by!r}")
    comps = [_blocks(c) for c in coefs.components]
    if pooled:
        comps = [c.reshape(1, -1, 64) for c in comps]
    if by == "overall":
        out = shannon_entropy(np.concatenate([c.reshape(c.shape[0], -1) for c in comps], axis=1))
    elif by == "component":
        out = np.stack([shannon_entropy(c.reshape(c.shape[0], -1)) for c in comps], axis=-1)
    else:
        out = np.stack([shannon_entropy(c, axis=1).reshape(-1, 8, 8) for c in comps], axis=1)
    return out[0] if pooled else out


def zero_fraction(coefs: Coefficients) -> np.ndarray:
    """Share of quantised coefficients (all components, real blocks) equal to 0, float64 ``(N,)``."""
    check_components(coefs)
    comps = [_blocks(c) for c in coefs.components]
    zeros = sum((c == 0).sum(axis=(1, 2)) for c in comps)
    total = sum(c.shape[1] * 64 for c in comps)
    return zeros / total


def pixel_entropy(images: Any) -> np.ndarray:
    """Zeroth-order entropy of each image's uint8 values (all channels), bits per value, ``(N,)``."""
    batch = as_batch(images)
    arr = np.asarray(batch.array) if not hasattr(batch.array, "get") else batch.array.get()
    return shannon_entropy(arr.reshape(batch.n, -1))


def psnr(originals: Any, reconstructed: Any) -> np.ndarray:
    """Peak signal-to-noise ratio of each image, in dB, float64 ``(N,)``.

    ``PSNR = 10 log10(255^2 / MSE)``, ``MSE`` over all pixels and channels of
    the image; ``inf`` where the images are identical.
    """
    a, b = as_batch(originals, "originals"), as_batch(reconstructed, "reconstructed")
    if a.shape != b.shape:
        raise ValueError(f"originals and reconstructed differ in shape: {a.shape} vs {b.shape}")
    x = np.asarray(a.array, dtype=np.float64).reshape(a.n, -1)
    y = np.asarray(b.array, dtype=np.float64).reshape(b.n, -1)
    mse = ((x - y) ** 2).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(255.0**2 / mse)


# --------------------------------------------------------------------------
# Dataset report
# --------------------------------------------------------------------------


def _coef_backend(backend: str) -> str:
    return "numpy" if backend == "numpy" else "auto"


def dataset_report(
    images: Any,
    qualities: Sequence[int] = DEFAULT_QUALITIES,
    *,
    subsampling: str | None = None,
    optimize: bool = False,
    backend: str = "auto",
):
    """Information measures of a dataset at each quality, as a pandas DataFrame.

    One row per quality (the index), each column the mean over the images
    unless named otherwise:

    ``bpp_scan``, ``bpp_file``
        scan and whole-file bits per pixel;
    ``bytes_file``
        file size in bytes;
    ``coef_entropy``
        per-image coefficient entropy (bits per coefficient);
    ``coef_entropy_pooled``
        the entropy of all coefficients of the dataset together;
    ``entropy_Y``, ``entropy_Cb``, ``entropy_Cr``
        per-component coefficient entropy (``entropy_Y`` only for grayscale);
    ``zero_fraction``
        share of zero coefficients;
    ``pixel_entropy``
        entropy of the decoded pixel values (``pixel_entropy_original`` is the
        originals');
    ``psnr_db``
        ``10 log10(255^2 / MSE)`` with the MSE over the whole dataset;
    ``psnr_mean_db``
        the mean of the finite per-image PSNRs.

    Parameters
    ----------
    images : array_like or list of array_like
        uint8 images ``(N, H, W, C)``, or a list of images of different sizes
        (``(H, W)`` or ``(H, W, C)`` each, as :func:`helmholtz.jpeg.bits`
        takes them). A list is measured image by image: bits per pixel are
        each image's over its own pixel count, the PSNR's MSE is over every
        value of every image, and ``entropy_Cb`` / ``entropy_Cr`` average the
        colour images only.
    qualities : sequence of int
        JPEG qualities 1..100.
    subsampling, optimize, backend
        As for :func:`helmholtz.jpeg.bits` (None: Pillow's default).
    """
    pd = require("pandas", purpose="helmholtz.info.dataset_report")

    qlist = as_quality_list(qualities)
    if ragged.is_ragged(images):
        return pd.DataFrame(_ragged_rows(images, qlist, subsampling, optimize, backend)).set_index("quality")
    batch = as_batch(images)
    arr = np.asarray(batch.array)
    n, pixels = batch.n, batch.array.shape[1] * batch.array.shape[2]
    many = lossy.coefficients_many(arr, qlist, subsampling=subsampling, backend=_coef_backend(backend))
    original_entropy = float(pixel_entropy(arr).mean())
    rows = []
    for q, coefs in zip(qlist, many):
        nbits = entropy.bits(coefs, optimize=optimize, backend=backend)
        sizes = np.array([len(f) for f in entropy.encode(coefs, optimize=optimize, backend=backend)])
        decoded = lossy.reconstruct(coefs, backend=_coef_backend(backend))
        decoded = np.asarray(decoded).reshape(arr.shape)
        per_image_psnr = psnr(arr, decoded)
        mse = ((arr.astype(np.float64) - decoded) ** 2).mean()
        comp = coefficient_entropy(coefs, by="component").mean(axis=0)
        row = {
            "quality": int(q),
            "images": n,
            "bpp_scan": float(nbits.mean() / pixels),
            "bpp_file": float(8 * sizes.mean() / pixels),
            "bytes_file": float(sizes.mean()),
            "coef_entropy": float(coefficient_entropy(coefs).mean()),
            "coef_entropy_pooled": float(coefficient_entropy(coefs, pooled=True)),
        }
        for name, value in zip(("Y", "Cb", "Cr"), comp):
            row[f"entropy_{name}"] = float(value)
        finite = per_image_psnr[np.isfinite(per_image_psnr)]
        row.update(
            zero_fraction=float(zero_fraction(coefs).mean()),
            pixel_entropy=float(pixel_entropy(decoded).mean()),
            pixel_entropy_original=original_entropy,
            psnr_db=float(10 * np.log10(255.0**2 / mse)) if mse > 0 else float("inf"),
            psnr_mean_db=float(finite.mean()) if finite.size else float("inf"),
        )
        rows.append(row)
    return pd.DataFrame(rows).set_index("quality")


def _ragged_rows(images: Any, qlist: np.ndarray, subsampling: str, optimize: bool, backend: str) -> list[dict]:
    """:func:`dataset_report`'s rows for a list of images of different sizes, through the ragged codec."""
    originals = [np.asarray(im) for im in images]
    coef_backend = _coef_backend(backend)
    first = lossy.coefficients(originals, int(qlist[0]), subsampling=subsampling, backend=coef_backend)  # validates the list
    pixels = np.array([c.height * c.width for c in first], dtype=np.float64)
    values = sum(im.size for im in originals)
    original_entropy = float(np.mean([pixel_entropy(im[None]) for im in originals]))
    rows = []
    for k, q in enumerate(qlist):
        coefs = first if k == 0 else lossy.coefficients(originals, int(q), subsampling=subsampling, backend=coef_backend)
        nbits = entropy.bits(coefs, optimize=optimize, backend=backend)
        sizes = np.array([len(f) for f in entropy.encode(coefs, optimize=optimize, backend=backend)], dtype=np.float64)
        decoded = [np.asarray(lossy.reconstruct(c, backend=coef_backend)).reshape(im.shape) for c, im in zip(coefs, originals)]
        sq_err = sum(float(((im.astype(np.float64) - d) ** 2).sum()) for im, d in zip(originals, decoded))
        per_image_psnr = np.concatenate([psnr(im[None], d[None]) for im, d in zip(originals, decoded)])
        by_component: list[list[float]] = [[], [], []]
        for c in coefs:
            for i, value in enumerate(coefficient_entropy(c, by="component")[0]):
                by_component[i].append(float(value))
        pooled = np.concatenate([_blocks(comp).ravel() for c in coefs for comp in c.components])
        row = {
            "quality": int(q),
            "images": len(originals),
            "bpp_scan": float((nbits / pixels).mean()),
            "bpp_file": float((8 * sizes / pixels).mean()),
            "bytes_file": float(sizes.mean()),
            "coef_entropy": float(np.mean([coefficient_entropy(c)[0] for c in coefs])),
            "coef_entropy_pooled": float(shannon_entropy(pooled)),
        }
        for name, entropies in zip(("Y", "Cb", "Cr"), by_component):
            if entropies:  # Cb and Cr only where some image is in colour
                row[f"entropy_{name}"] = float(np.mean(entropies))
        finite = per_image_psnr[np.isfinite(per_image_psnr)]
        mse = sq_err / values
        row.update(
            zero_fraction=float(np.mean([zero_fraction(c)[0] for c in coefs])),
            pixel_entropy=float(np.mean([pixel_entropy(d[None]) for d in decoded])),
            pixel_entropy_original=original_entropy,
            psnr_db=float(10 * np.log10(255.0**2 / mse)) if mse > 0 else float("inf"),
            psnr_mean_db=float(finite.mean()) if finite.size else float("inf"),
        )
        rows.append(row)
    return rows


def plot_report(df, path: str | os.PathLike, title: str = "") -> None:
    """Draw bits per pixel (scan and file) and PSNR against quality into a PNG."""
    matplotlib = require("matplotlib", purpose="helmholtz.info.plot_report")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(df.index, df["bpp_scan"], "o-", label="scan data")
    ax1.plot(df.index, df["bpp_file"], "s--", label="whole file")
    ax1.set_xlabel("JPEG quality")
    ax1.set_ylabel("bits per pixel")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax2.plot(df.index, df["psnr_db"], "o-", color="C2")
    ax2.set_xlabel("JPEG quality")
    ax2.set_ylabel("PSNR (dB)")
    ax2.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
