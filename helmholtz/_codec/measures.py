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
    if k > 4 * m + (1 << 16):
        # values spread far wider than there are samples (e.g. 0 and 2**31): counting by sorting
        # needs memory in the samples, where a table of every value in between would need it in the range
        for i, r in enumerate(rows):
            _, counts = np.unique(r, return_counts=True)
            p = counts / m
            out[i] = -(p * np.log2(p)).sum()
        return out.reshape(shape) + 0.0
    chunk = max(1, (1 << 20) // max(k, m))  # rows per bincount: its tables stay near 8 MB
    index_type = np.int32 if chunk * k < (1 << 31) else np.int64
    for s in range(0, rows.shape[0], chunk):
        r = rows[s : s + chunk].astype(index_type) - index_type(lo)
        n = r.shape[0]
        r += (np.arange(n, dtype=index_type) * index_type(k))[:, None]
        counts = np.bincount(r.ravel(), minlength=n * k)
        # H = log2(m) - sum_v c_v log2(c_v) / m, the sum over the values present only
        present = np.flatnonzero(counts)
        c = counts[present].astype(np.float64)
        per_row = np.bincount(present // k, weights=c * np.log2(c), minlength=n)
        out[s : s + n] = np.log2(m) - per_row / m
    return np.maximum(out, 0.0).reshape(shape) + 0.0  # no -0.0 (a row of one value gives log2(m) - log2(m))


# --------------------------------------------------------------------------
# Measures
# --------------------------------------------------------------------------


def _pixels(coefs: Any) -> Any:
    """Pixels per image: an int for one container, an array for a ragged list of them."""
    if isinstance(coefs, (list, tuple)):
        return np.array([c.height * c.width for c in coefs], dtype=np.float64)
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
    return np.asarray(entropy.bits(coefs, optimize=optimize, backend=backend), dtype=np.float64).reshape(-1) / _pixels(coefs)


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
    files = entropy.encode(coefs, optimize=optimize, backend=backend)
    if isinstance(coefs, (list, tuple)):  # a ragged list: one list of files per container
        files = [f for group in files for f in (group if isinstance(group, (list, tuple)) else [group])]
    sizes = np.array([len(f) for f in files], dtype=np.float64)
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


#: Bytes of original pixels measured per step of :func:`dataset_report` (its memory stays near a small multiple of it).
REPORT_CHUNK_BYTES = 8 << 20


class _Totals:
    """Sums over images of one quality's measures; :meth:`row` turns them into :func:`dataset_report`'s row."""

    def __init__(self) -> None:
        self.n = 0
        self.bpp_scan = self.bpp_file = self.bytes_file = self.coef_entropy = 0.0
        self.zero_fraction = self.pixel_entropy = 0.0
        self.sq_err = 0
        self.values = 0
        self.psnr_sum, self.psnr_count = 0.0, 0
        self.component = [[0.0, 0], [0.0, 0], [0.0, 0]]
        self.histogram = np.zeros(1 << 16, np.int64)  # pooled coefficient counts, offset by 2**15

    def add(self, arr: np.ndarray, coefs: Coefficients, optimize: bool, backend: str) -> None:
        n, pixels = arr.shape[0], arr.shape[1] * arr.shape[2]
        nbits = np.asarray(entropy.bits(coefs, optimize=optimize, backend=backend), dtype=np.float64)
        sizes = np.array([len(f) for f in entropy.encode(coefs, optimize=optimize, backend=backend)], dtype=np.float64)
        decoded = np.asarray(lossy.reconstruct(coefs, backend=_coef_backend(backend))).reshape(arr.shape)
        diff = arr.astype(np.int32) - decoded
        sq = np.einsum("ij,ij->i", diff.reshape(n, -1), diff.reshape(n, -1), dtype=np.int64)
        self.n += n
        self.bpp_scan += float((nbits / pixels).sum())
        self.bpp_file += float((8 * sizes / pixels).sum())
        self.bytes_file += float(sizes.sum())
        self.coef_entropy += float(coefficient_entropy(coefs).sum())
        for i, value in enumerate(coefficient_entropy(coefs, by="component").sum(axis=0)):
            self.component[i][0] += float(value)
            self.component[i][1] += n
        for comp in coefs.components:
            self.histogram += np.bincount((_blocks(comp).reshape(-1).astype(np.int32) + (1 << 15)), minlength=1 << 16)
        self.zero_fraction += float(zero_fraction(coefs).sum())
        self.pixel_entropy += float(pixel_entropy(decoded).sum())
        self.sq_err += int(sq.sum())
        self.values += arr.size
        values_per_image = arr[0].size
        with np.errstate(divide="ignore"):
            per_image = 10.0 * np.log10(255.0**2 * values_per_image / sq)
        finite = per_image[np.isfinite(per_image)]
        self.psnr_sum += float(finite.sum())
        self.psnr_count += int(finite.size)

    def merge(self, other: "_Totals") -> None:
        """Add ``other``'s sums (another chunk's) to these."""
        for name in ("n", "bpp_scan", "bpp_file", "bytes_file", "coef_entropy", "zero_fraction", "pixel_entropy", "sq_err", "values",
                     "psnr_sum", "psnr_count"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for mine, theirs in zip(self.component, other.component):
            mine[0] += theirs[0]
            mine[1] += theirs[1]
        self.histogram += other.histogram

    def row(self, quality: int, original_entropy: float) -> dict:
        n = max(self.n, 1)
        counts = self.histogram[self.histogram > 0]
        p = counts / counts.sum() if counts.size else np.ones(1)
        row = {
            "quality": int(quality),
            "images": self.n,
            "bpp_scan": self.bpp_scan / n,
            "bpp_file": self.bpp_file / n,
            "bytes_file": self.bytes_file / n,
            "coef_entropy": self.coef_entropy / n,
            "coef_entropy_pooled": float(-(p * np.log2(p)).sum()) + 0.0,
        }
        for name, (total, count) in zip(("Y", "Cb", "Cr"), self.component):
            if count:  # Cb and Cr only where some image is in colour
                row[f"entropy_{name}"] = total / count
        mse = self.sq_err / max(self.values, 1)
        row.update(
            zero_fraction=self.zero_fraction / n,
            pixel_entropy=self.pixel_entropy / n,
            pixel_entropy_original=original_entropy,
            psnr_db=float(10 * np.log10(255.0**2 / mse)) if mse > 0 else float("inf"),
            psnr_mean_db=self.psnr_sum / self.psnr_count if self.psnr_count else float("inf"),
        )
        return row


def _chunks(images: Any, chunk_images: int | None) -> Any:
    """``images`` as a stream of uint8 arrays ``(n, H, W, C)`` of one size each."""
    if hasattr(images, "batches") and callable(images.batches):  # a data reader: read a batch at a time
        shape = getattr(images, "image_shape", None)
        per = int(np.prod(shape)) if shape else 3 << 16
        size = chunk_images or max(1, REPORT_CHUNK_BYTES // per)
        for x, _ in images.batches(size):
            if isinstance(x, list):
                for im in x:
                    yield np.asarray(im)[None] if np.asarray(im).ndim == 3 else np.asarray(im)[None, ..., None]
            else:
                yield x
        return
    if ragged.is_ragged(images):
        for k, im in enumerate(images):
            batch = as_batch(np.asarray(im)[None] if np.asarray(im).ndim in (2, 3) else im, f"images[{k}]")
            yield np.asarray(batch.array)
        return
    batch = as_batch(images)
    arr = np.asarray(batch.array)
    size = chunk_images or max(1, REPORT_CHUNK_BYTES // max(1, arr[0].size if arr.shape[0] else 1))
    for start in range(0, arr.shape[0], size):
        yield arr[start : start + size]


def dataset_report(
    images: Any,
    qualities: Sequence[int] = DEFAULT_QUALITIES,
    *,
    subsampling: str | None = None,
    optimize: bool = False,
    backend: str = "auto",
    chunk_images: int | None = None,
    progress: Any = None,
    workers: int | None = None,
):
    """Information measures of a dataset at each quality, as a pandas DataFrame.

    One row per quality (the index), each column the mean over the images
    unless named otherwise:

    ``bpp_scan``, ``bpp_file``
        scan and whole-file bits per pixel (each image's over its own pixels);
    ``bytes_file``
        file size in bytes;
    ``coef_entropy``
        per-image coefficient entropy (bits per coefficient);
    ``coef_entropy_pooled``
        the entropy of all coefficients of the dataset together;
    ``entropy_Y``, ``entropy_Cb``, ``entropy_Cr``
        per-component coefficient entropy (``entropy_Y`` only for grayscale;
        ``entropy_Cb`` / ``entropy_Cr`` average the colour images only);
    ``zero_fraction``
        share of zero coefficients;
    ``pixel_entropy``
        entropy of the decoded pixel values (``pixel_entropy_original`` is the
        originals');
    ``psnr_db``
        ``10 log10(255^2 / MSE)`` with the MSE over every value of every image;
    ``psnr_mean_db``
        the mean of the finite per-image PSNRs.

    The images are measured a chunk at a time (about
    :data:`REPORT_CHUNK_BYTES` of pixels) and every column is a sum over
    images or a histogram, so memory stays flat however many images there
    are; the result equals measuring them all at once.

    Parameters
    ----------
    images : array_like, list of array_like, or a reader
        uint8 images ``(N, H, W, C)``; a list of images of different sizes
        (``(H, W)`` or ``(H, W, C)`` each, as :func:`helmholtz.jpeg.bits`
        takes them), measured image by image; or an object with a
        ``batches(n)`` method yielding ``(images, labels)`` (a
        :class:`helmholtz.data.Reader`), read a batch at a time.
    qualities : sequence of int
        JPEG qualities 1..100.
    subsampling, optimize, backend
        As for :func:`helmholtz.jpeg.bits` (None: Pillow's default).
    chunk_images : int, optional
        Images per step (default: about 8 MiB of pixels).
    progress : callable, optional
        Called with the number of images of each step once it is measured.
    workers : int, optional
        Measure the chunks in this many processes (default 1, this one);
        the result is the same, summed in the chunks' order.
    """
    pd = require("pandas", purpose="helmholtz.info.dataset_report")

    qlist = as_quality_list(qualities)
    if chunk_images is not None and (isinstance(chunk_images, bool) or not isinstance(chunk_images, (int, np.integer)) or chunk_images < 1):
        raise ValueError(f"chunk_images must be an int >= 1 or None; got {chunk_images!r}")
    if ragged.is_ragged(images):
        lossy.coefficients(list(images), int(qlist[0]), subsampling=subsampling, backend=_coef_backend(backend))  # validates the list
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1):
        raise ValueError(f"workers must be an int >= 1 or None; got {workers!r}")
    totals = [_Totals() for _ in qlist]
    original_entropy, n = 0.0, 0
    job = (qlist, subsampling, optimize, backend)
    for part, (count, entropy_sum) in _measured(_chunks(images, chunk_images), job, workers or 1):
        for t, p in zip(totals, part):
            t.merge(p)
        original_entropy += entropy_sum
        n += count
        if progress is not None:
            progress(count)
    if n == 0:
        raise ValueError("images holds no images to measure")
    return pd.DataFrame([t.row(q, original_entropy / n) for t, q in zip(totals, qlist)]).set_index("quality")


def _measure_chunk(arr: np.ndarray, job: tuple) -> tuple[list, tuple[int, float]]:
    """One chunk's :class:`_Totals` per quality, its image count and its original pixel entropies' sum."""
    qlist, subsampling, optimize, backend = job
    arr = np.ascontiguousarray(arr)
    totals = [_Totals() for _ in qlist]
    if arr.shape[0] == 0:
        return totals, (0, 0.0)
    many = lossy.coefficients_many(arr, qlist, subsampling=subsampling, backend=_coef_backend(backend))
    for t, coefs in zip(totals, many):
        t.add(arr, coefs, optimize, backend)
    return totals, (arr.shape[0], float(pixel_entropy(arr).sum()))


def _measured(chunks: Any, job: tuple, workers: int) -> Any:
    """:func:`_measure_chunk` of each chunk, in order; with ``workers`` > 1 in worker processes, at most 2 per worker in flight."""
    if workers == 1:
        for arr in chunks:
            yield _measure_chunk(arr, job)
        return
    import collections
    import multiprocessing

    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with ctx.Pool(workers) as pool:
        pending: collections.deque = collections.deque()
        for arr in chunks:
            pending.append(pool.apply_async(_measure_chunk, (arr, job)))
            if len(pending) >= 2 * workers:  # bounded: memory stays a few chunks whatever N is
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


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
