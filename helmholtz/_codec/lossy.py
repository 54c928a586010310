"""The JPEG lossy path, exact to libjpeg-turbo as Pillow runs it.

``roundtrip(images, q)`` returns exactly the pixels of::

    Image.fromarray(img).save(buf, "JPEG", quality=q, subsampling=s)
    np.asarray(Image.open(buf))

for every image of a batch, and ``coefficients(images, q)`` the quantised DCT
coefficients stored in that file, without writing a file. Many qualities
share one forward transform through :func:`roundtrip_many` and
:func:`coefficients_many`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import reference as ref
from . import ragged, registry
from .arrays import array_dtype_name, as_batch, as_qualities, as_quality_list, as_threads, check_normalization, check_subsampling, resolve_subsampling, wrap_torch
from .container import Coefficients, check_coefficient_range, check_components, quant_tables_for_quality, tables_for

__all__ = [
    "Coefficients",
    "quant_tables",
    "roundtrip",
    "roundtrip_many",
    "roundtrip_float",
    "coefficients",
    "coefficients_many",
    "reconstruct",
    "thread_count",
    "ZIGZAG",
]

ZIGZAG = ref.ZIGZAG.copy()


def quant_tables(quality: int, *, baseline: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Return the luminance and chrominance quantisation tables for ``quality``.

    Parameters
    ----------
    quality : int
        JPEG quality, 1..100 (IJG scale).
    baseline : bool, optional
        Clamp entries to 1..255 as baseline JPEG (and Pillow) does; with
        ``False`` entries may reach 32767.

    Returns
    -------
    luma, chroma : ndarray
        uint16 arrays of shape (8, 8) in natural (row-major) order: the
        Annex K tables scaled by ``5000 / q`` below 50 and ``200 - 2 q`` from 50.

    Examples
    --------
    >>> luma, chroma = quant_tables(50)
    >>> int(luma[0, 0]), int(chroma[0, 0])
    (16, 17)
    """
    q = as_qualities(quality, 1)[0]
    if not isinstance(baseline, (bool, np.bool_)):
        raise TypeError(f"baseline must be True or False; got {baseline!r}")
    luma, chroma = quant_tables_for_quality(int(q), bool(baseline))
    return luma, chroma


def thread_count(num_threads: Any) -> int:
    """Validate ``num_threads``; None means every core this process may use."""
    return as_threads(num_threads, registry.default_threads)


def _quality_rows(quality: Any, batch: Any, be: Any) -> Any:
    """``(1, N)`` qualities for ``be``: validated host ints, or a device array used in place.

    On the ``cuda`` backend a CUDA tensor / CuPy array of N integer qualities
    is passed to the kernels as it is, so that nothing is read back or
    uploaded (the call stays asynchronous and can be captured in a CUDA
    graph); its values are then clamped to 1..100 on the device instead of
    raising, as documented for :func:`roundtrip`.
    """
    if be.device == "cuda" and registry.on_cuda(quality):
        if int(np.prod(tuple(quality.shape))) != batch.n:
            raise ValueError(f"quality has shape {tuple(quality.shape)} but there are {batch.n} images; give one per image")
        if array_dtype_name(quality) not in ("int8", "int16", "int32", "int64", "uint8"):
            raise TypeError(f"a device quality array must hold integers; got dtype {quality.dtype}")
        return quality.reshape(1, batch.n)
    return as_qualities(quality, batch.n)[None, :]


def _prepare(images, subsampling, backend, num_threads):
    if subsampling is not None:  # a bad name is reported before the images are looked at
        check_subsampling(subsampling, none_ok=True)
    batch = as_batch(images)
    subsampling = resolve_subsampling(subsampling, int(batch.array.shape[3]))
    return batch, subsampling, registry.resolve(backend, batch.device), thread_count(num_threads)


def roundtrip(
    images: Any,
    quality: int | Sequence[int],
    *,
    subsampling: str | None = None,
    backend: str = "auto",
    num_threads: int | None = None,
) -> Any:
    """JPEG-compress and decompress images exactly as Pillow (libjpeg-turbo) does.

    Parameters
    ----------
    images : array_like
        uint8 images of shape ``(H, W)`` (one grayscale image), ``(H, W, C)``
        or ``(N, H, W, C)`` with ``C`` = 1 (grayscale) or 3 (RGB); any
        ``H, W >= 1``. NumPy arrays, CPU torch tensors, and objects with the
        buffer protocol or DLPack; CUDA tensors and CuPy arrays with
        ``backend="cuda"``. Or a list (tuple) of single images of any sizes,
        grayscale and colour mixed: the result is then a list, one per image,
        computed in one call into the C core on the ``cpu`` backend.
    quality : int, sequence of int, or a CUDA tensor / CuPy array
        JPEG quality 1..100, for all images or one per image. With device
        images, a device array of one integer quality per image is read in
        place by the kernels (no host synchronisation, CUDA-graph safe); its
        values are clamped to 1..100 on the device rather than checked.
    subsampling : {None, "4:2:0", "4:2:2", "4:4:4"}
        Chroma subsampling. None (the default) is Pillow's default, what
        ``save(..., "JPEG", quality=q)`` without a ``subsampling`` argument
        does: ``"4:2:0"`` for colour images. The pixels of grayscale images
        do not depend on it.
    backend : {"auto", "cpu", "numpy", "cuda"}
        Where to compute. ``"auto"`` takes the fastest one for the input.
    num_threads : int, optional
        Threads for the ``cpu`` backend; all available cores by default.

    Returns
    -------
    array
        uint8, the same shape and kind (NumPy array or torch tensor) as ``images``:
        byte for byte what Pillow's ``save(..., "JPEG", quality=q,
        subsampling=s)`` followed by ``Image.open`` gives.

    Raises
    ------
    TypeError
        If ``images`` is not uint8 or ``quality`` is not integral.
    ValueError
        For a bad shape, channel count, quality, subsampling or backend name.

    Examples
    --------
    >>> import numpy as np
    >>> from helmholtz import jpeg
    >>> img = np.zeros((32, 32, 3), np.uint8)
    >>> jpeg.roundtrip(img, 20).shape
    (32, 32, 3)
    >>> [a.shape for a in jpeg.roundtrip([img, img[:5, :7]], 20)]
    [(32, 32, 3), (5, 7, 3)]
    """
    if ragged.is_ragged(images):
        return ragged.roundtrip(images, quality, subsampling=subsampling, backend=backend, num_threads=num_threads)
    batch, subsampling, be, threads = _prepare(images, subsampling, backend, num_threads)
    out = be.roundtrip(batch.array, _quality_rows(quality, batch, be), subsampling, threads)[0]
    return batch.wrap(out.reshape(batch.shape))


def roundtrip_many(
    images: Any,
    qualities: Sequence[int],
    *,
    subsampling: str | None = None,
    backend: str = "auto",
    num_threads: int | None = None,
) -> Any:
    """Round-trip every image at each of several qualities, transforming once.

    Colour conversion, downsampling and the forward DCT run once per image;
    only quantisation and decoding run per quality.

    Parameters
    ----------
    images : array_like
        As for :func:`roundtrip`.
    qualities : sequence of int
        The qualities to apply, each 1..100.
    subsampling, backend, num_threads
        As for :func:`roundtrip`.

    Returns
    -------
    array
        uint8 of shape ``(len(qualities),) + images.shape``; entry ``k`` equals
        ``roundtrip(images, qualities[k])``. For a list of images: a list whose
        entry ``i`` has shape ``(len(qualities),) + images[i].shape``.
    """
    if ragged.is_ragged(images):
        return ragged.roundtrip_many(images, qualities, subsampling=subsampling, backend=backend, num_threads=num_threads)
    batch, subsampling, be, threads = _prepare(images, subsampling, backend, num_threads)
    qlist = as_quality_list(qualities)
    grid = np.ascontiguousarray(np.repeat(qlist[:, None], batch.n, axis=1))
    out = be.roundtrip(batch.array, grid, subsampling, threads)
    return batch.wrap(out.reshape((len(qlist),) + batch.shape))


def roundtrip_float(
    images: Any,
    quality: int | Sequence[int],
    *,
    subsampling: str | None = None,
    dtype: str = "float32",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    backend: str = "auto",
    num_threads: int | None = None,
) -> Any:
    """Round trip straight into a channels-first float batch for training.

    On the ``cuda`` backend the kernels write the float output directly (no
    uint8 intermediate); on the CPU the exact uint8 round trip is converted.

    Parameters
    ----------
    images, quality, subsampling, backend, num_threads
        As for :func:`roundtrip`.
    dtype : {"float32", "bfloat16"}
        Output type; bfloat16 needs a torch tensor input (NumPy has none).
    mean, std : sequence of float, optional
        Per-channel normalisation ``(x / 255 - mean) / std`` in float32 (one
        value or one per channel); both or neither. Without them: ``x / 255``.

    Returns
    -------
    array
        ``(N, C, H, W)`` (``(C, H, W)`` for a single image) of the input's kind,
        equal to ``roundtrip(...)`` converted with float32 arithmetic.
    """
    batch, subsampling, be, threads = _prepare(images, subsampling, backend, num_threads)
    mean_a, std_a = check_normalization(dtype, mean, std, batch.array.shape[3])
    single = len(batch.shape) < 4
    if be.device == "cuda":
        from . import cuda

        out = cuda.roundtrip_float(batch.array, quality, subsampling, dtype, mean, std)
        return out[0] if single else out
    if dtype == "bfloat16" and batch.kind != "torch":
        raise ValueError("dtype='bfloat16' needs a torch tensor input; NumPy has no bfloat16")
    pixels = be.roundtrip(batch.array, as_qualities(quality, batch.n)[None, :], subsampling, threads)[0]
    out = pixels.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
    if mean_a is not None:
        out = (out - mean_a.reshape(1, -1, 1, 1)) / std_a.reshape(1, -1, 1, 1)
    out = np.ascontiguousarray(out[0] if single else out)
    if batch.kind == "torch":
        import torch

        t = torch.from_numpy(out)
        return t.to(torch.bfloat16) if dtype == "bfloat16" else t
    return out


def _make_coefficients(batch, components, qualities, subsampling) -> Coefficients:
    return Coefficients(tuple(components), tables_for(qualities), qualities.copy(), subsampling, batch.shape)


def coefficients(
    images: Any,
    quality: int | Sequence[int],
    *,
    subsampling: str | None = None,
    backend: str = "auto",
    num_threads: int | None = None,
) -> Coefficients:
    """Quantised DCT coefficients of images, equal to those in Pillow's JPEG file.

    Parameters
    ----------
    images, quality, subsampling, backend, num_threads
        As for :func:`roundtrip`.

    Returns
    -------
    Coefficients
        int16 block grids per component with the tables and shape; see
        :class:`Coefficients` for the layout. For a list of images: a list
        with one container (a batch of one) per image. Its ``subsampling``
        is the one applied; with the default None that is ``"4:2:0"`` for
        colour and ``"4:4:4"`` (Pillow's 1x1 SOF) for grayscale, so that
        :func:`helmholtz.jpeg.encode` of the container writes Pillow's default file.
    """
    if ragged.is_ragged(images):
        return ragged.coefficients(images, quality, subsampling=subsampling, backend=backend, num_threads=num_threads)
    batch, subsampling, be, threads = _prepare(images, subsampling, backend, num_threads)
    q = as_qualities(quality, batch.n)
    comps = be.forward(batch.array, q[None, :], subsampling, threads)[0]
    return _make_coefficients(batch, comps, q, subsampling)


def coefficients_many(
    images: Any,
    qualities: Sequence[int],
    *,
    subsampling: str | None = None,
    backend: str = "auto",
    num_threads: int | None = None,
) -> list[Coefficients]:
    """Quantised coefficients at several qualities from one forward transform.

    Returns
    -------
    list of Coefficients
        Entry ``k`` equals ``coefficients(images, qualities[k])``.
    """
    batch, subsampling, be, threads = _prepare(images, subsampling, backend, num_threads)
    qlist = as_quality_list(qualities)
    grid = np.ascontiguousarray(np.repeat(qlist[:, None], batch.n, axis=1))
    per_quality = be.forward(batch.array, grid, subsampling, threads)
    return [_make_coefficients(batch, comps, grid[k], subsampling) for k, comps in enumerate(per_quality)]


def reconstruct(coefs: Coefficients, *, backend: str = "auto", num_threads: int | None = None, validate: bool = True) -> Any:
    """Decode a :class:`Coefficients` container back to pixels.

    Parameters
    ----------
    coefs : Coefficients
    backend, num_threads
        As for :func:`roundtrip`.
    validate : bool
        For the ``cuda`` backend: refuse coefficients no 8-bit baseline
        encoder produces (``|coefficient * table entry| > 2176``), as the CPU
        backends always do. The check runs on the device and its flag is read
        back once (the one host synchronisation of that backend);
        ``validate=False`` skips the read, so the call can be captured in a
        CUDA graph, and out-of-range blocks then decode without an error.

    Returns
    -------
    array
        uint8 pixels of shape ``coefs.shape``, equal to ``roundtrip`` of the
        images the coefficients came from; a torch tensor when the components
        are torch tensors.

    Raises
    ------
    TypeError, ValueError
        If ``coefs`` is not a consistent :class:`Coefficients`, or holds
        coefficients no 8-bit baseline encoder produces.
    """
    subsampling = check_components(coefs)
    comps = coefs.components
    device = "cuda" if registry.on_cuda(comps[0]) else "cpu"
    be = registry.resolve(backend, device)
    tables = coefs.tables
    if device == "cpu":
        tables = np.ascontiguousarray(np.asarray(tables.cpu() if hasattr(tables, "cpu") else tables), dtype=np.uint16)
        comps = [np.ascontiguousarray(np.asarray(c.detach().cpu() if hasattr(c, "detach") else c)) for c in comps]
        if be.name == "numpy":  # the C core checks in C; the reference here
            check_coefficient_range(comps, tables)
    if not isinstance(validate, (bool, np.bool_)):
        raise TypeError(f"validate must be True or False; got {validate!r}")
    extra = {} if device == "cpu" else {"validate": bool(validate)}
    out = be.reconstruct(comps, tables, coefs.height, coefs.width, subsampling, thread_count(num_threads), **extra)
    if device == "cpu" and not isinstance(coefs.components[0], np.ndarray):
        return wrap_torch(out.reshape(coefs.shape))
    return out.reshape(coefs.shape)
