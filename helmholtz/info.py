"""Information measures of JPEG-compressed image batches, and ``helmholtz info``.

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
and ``helmholtz info`` prints that table for a dataset, writes CSV / JSON and
plots bits per pixel and PSNR against quality.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import _entropy
from . import jpeg as _jpeg
from ._arrays import as_batch, as_quality_list

__all__ = [
    "scan_bits_per_pixel",
    "file_bits_per_pixel",
    "coefficient_entropy",
    "pixel_entropy",
    "psnr",
    "zero_fraction",
    "shannon_entropy",
    "dataset_report",
    "load_dataset",
    "register",
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


def _as_coefficients(x, quality, subsampling, backend) -> _jpeg.Coefficients:
    if isinstance(x, _jpeg.Coefficients):
        return _entropy._coefficients(x, quality, subsampling, "numpy", None)[0]
    if quality is None:
        raise TypeError("quality is required when images are given")
    return _jpeg.coefficients(x, quality, subsampling=subsampling or "4:2:0", backend=backend)


def _pixels(coefs: _jpeg.Coefficients) -> int:
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
    coefs = _as_coefficients(images_or_coefficients, quality, subsampling, _coef_backend(backend))
    return _entropy.bits(coefs, optimize=optimize, backend=backend) / _pixels(coefs)


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
    coefs = _as_coefficients(images_or_coefficients, quality, subsampling, _coef_backend(backend))
    sizes = np.array([len(f) for f in _entropy.encode(coefs, optimize=optimize, backend=backend)], dtype=np.float64)
    return 8.0 * sizes / _pixels(coefs)


def _blocks(component) -> np.ndarray:
    """(N, bh, bw, 8, 8) -> (N, blocks, 64) as a host int16 array."""
    c = _entropy._host(component)
    return c.reshape(c.shape[0], -1, 64)


def coefficient_entropy(coefs: _jpeg.Coefficients, *, by: str = "overall", pooled: bool = False) -> np.ndarray:
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
    if not isinstance(coefs, _jpeg.Coefficients):
        raise TypeError(f"coefs must be a helmholtz.jpeg.Coefficients; got {type(coefs).__name__}")
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


def zero_fraction(coefs: _jpeg.Coefficients) -> np.ndarray:
    """Share of quantised coefficients (all components, real blocks) equal to 0, float64 ``(N,)``."""
    if not isinstance(coefs, _jpeg.Coefficients):
        raise TypeError(f"coefs must be a helmholtz.jpeg.Coefficients; got {type(coefs).__name__}")
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
    subsampling: str = "4:2:0",
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
    images : array_like
        uint8 images ``(N, H, W, C)``.
    qualities : sequence of int
        JPEG qualities 1..100.
    subsampling, optimize, backend
        As for :func:`helmholtz.jpeg.bits`.
    """
    import pandas as pd

    qlist = as_quality_list(qualities)
    batch = as_batch(images)
    arr = np.asarray(batch.array)
    n, pixels = batch.n, batch.array.shape[1] * batch.array.shape[2]
    many = _jpeg.coefficients_many(arr, qlist, subsampling=subsampling, backend=_coef_backend(backend))
    original_entropy = float(pixel_entropy(arr).mean())
    rows = []
    for q, coefs in zip(qlist, many):
        nbits = _entropy.bits(coefs, optimize=optimize, backend=backend)
        sizes = np.array([len(f) for f in _entropy.encode(coefs, optimize=optimize, backend=backend)])
        decoded = _jpeg.reconstruct(coefs, backend=_coef_backend(backend))
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


# --------------------------------------------------------------------------
# Data and CLI
# --------------------------------------------------------------------------

DATASETS = {"cifar10": "cifar10.npz"}


def _data_dir(data_dir: str | os.PathLike | None) -> Path:
    if data_dir is None or str(data_dir) == "":
        data_dir = os.environ.get("HELMHOLTZ_DATA") or None
    if data_dir is None:
        raise FileNotFoundError("no data directory: pass --data-dir DIR or set HELMHOLTZ_DATA")
    return Path(data_dir)


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, split: str = "test", limit: int | None = None) -> np.ndarray:
    """Images of a dataset stored as ``<data_dir>/<name>.npz`` (``x_train``, ``x_test``).

    Parameters
    ----------
    name : {"cifar10"}
        The dataset.
    data_dir : path, optional
        Directory holding the file; ``$HELMHOLTZ_DATA`` by default.
    split : {"test", "train"}
        Which images.
    limit : int, optional
        Keep the first ``limit`` images.

    Returns
    -------
    ndarray
        uint8 ``(N, H, W, C)``.
    """
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(map(repr, DATASETS))}; got {name!r}")
    if split not in ("test", "train"):
        raise ValueError(f"split must be 'test' or 'train'; got {split!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"limit must be a positive int; got {limit!r}")
    path = _data_dir(data_dir) / DATASETS[name]
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    with np.load(path) as z:
        x = z[f"x_{split}"]
        x = x[:limit] if limit is not None else x[:]
    x = np.ascontiguousarray(x)
    if x.dtype != np.uint8 or x.ndim not in (3, 4):
        raise ValueError(f"{path}: x_{split} must be uint8 images; got {x.dtype} {x.shape}")
    return x if x.ndim == 4 else x[..., None]


def _parse_qualities(text: str) -> list[int]:
    try:
        qs = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--qualities must be comma-separated ints such as 1,5,10; got {text!r}") from None
    as_quality_list(qs, "--qualities")
    return qs


def plot_report(df, path: str | os.PathLike, title: str = "") -> None:
    """Draw bits per pixel (scan and file) and PSNR against quality into a PNG."""
    import matplotlib

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


def _run(args) -> int:
    import pandas as pd

    qualities = _parse_qualities(args.qualities)
    images = load_dataset(args.dataset, args.data_dir, args.split, args.limit)
    df = dataset_report(images, qualities, subsampling=args.subsampling, optimize=args.optimize, backend=args.backend)
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(f"{args.dataset} {args.split}: {len(images)} images, subsampling {args.subsampling}, optimize={args.optimize}")
        print(df.to_string(float_format=lambda v: f"{v:.4g}"))
    if args.csv:
        df.to_csv(args.csv)
    if args.json:
        df.reset_index().to_json(args.json, orient="records", indent=2)
    if args.plot:
        plot_report(df, args.plot, f"{args.dataset} {args.split} ({len(images)} images)")
    return 0


def register(subparsers) -> None:
    """Add the ``info`` sub-command to the ``helmholtz`` argument parser."""
    p = subparsers.add_parser(
        "info",
        help="bits per pixel, entropies, PSNR and zero fraction of a dataset per JPEG quality",
        description="Information measures of a dataset compressed with JPEG at several qualities.",
    )
    p.add_argument("--dataset", default="cifar10", choices=sorted(DATASETS), help="dataset (default cifar10)")
    p.add_argument("--data-dir", help="directory holding <dataset>.npz (default $HELMHOLTZ_DATA)")
    p.add_argument("--qualities", default=",".join(map(str, DEFAULT_QUALITIES)), help="comma-separated JPEG qualities")
    p.add_argument("--split", default="test", choices=["test", "train"])
    p.add_argument("--limit", type=int, help="use the first N images")
    p.add_argument("--subsampling", default="4:2:0", choices=["4:2:0", "4:2:2", "4:4:4"])
    p.add_argument("--optimize", action="store_true", help="per-image optimal Huffman tables")
    p.add_argument("--backend", default="auto", choices=["auto", "cpu", "numpy"])
    p.add_argument("--csv", help="write the table as CSV")
    p.add_argument("--json", help="write the table as JSON records")
    p.add_argument("--plot", help="draw bpp and PSNR against quality into this PNG")
    p.set_defaults(func=_run)
