"""Exact JPEG bit counts and byte-exact baseline JPEG files.

:func:`bits` counts the entropy-coded bits a baseline JPEG encoder
(libjpeg-turbo, as Pillow runs it) writes for each image, and :func:`encode`
writes the files themselves, byte-identical to Pillow's. Both take images or
the :class:`~helmholtz.jpeg.Coefficients` container of
:func:`~helmholtz.jpeg.coefficients`, so a sweep quantises once and codes
many times. :mod:`helmholtz.jpeg` re-exports them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from ..errors import BackendUnavailable
from . import entropy_reference as er
from . import lossy, ragged, registry
from .arrays import as_batch, as_qualities, as_quality_list, check_subsampling, resolve_subsampling, to_host_int16
from .container import Coefficients, check_components
from .reference import SUBSAMPLING_FACTORS

__all__ = ["bits", "bits_many", "encode", "symbol_frequencies", "as_container"]

_BACKENDS = ("auto", "numpy", "cpu", "cuda")


def _native():
    """The compiled module, or None where it is not built."""
    try:
        from . import native
    except ImportError:
        return None
    return native


def _resolve(backend: Any) -> str:
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a string, one of {', '.join(map(repr, _BACKENDS))}; got {backend!r}")
    if backend == "auto":
        return "cpu" if _native() is not None else "numpy"
    if backend == "cpu":
        if _native() is None:
            raise BackendUnavailable(
                "backend 'cpu' needs helmholtz's compiled extension (helmholtz._codec.native), "
                "which is not built; reinstall with a C compiler available, or use backend='numpy'"
            )
        return "cpu"
    if backend == "numpy":
        return "numpy"
    if backend == "cuda":
        registry.get("cuda")  # raises BackendUnavailable naming what to install
        return "cuda"
    raise ValueError(f"backend must be one of {', '.join(map(repr, _BACKENDS))}; got {backend!r}")


def _check_flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def as_container(x: Any, quality: Any, subsampling: Any, backend: str = "auto", num_threads: Any = None) -> Coefficients:
    """Images (with a quality) or a container (without one) -> a validated :class:`Coefficients`.

    The one place that decides how the entropy functions and the information
    measures read their first two arguments.
    """
    return _coefficients(x, quality, subsampling, backend, num_threads, host=False)[0]


def _coefficients(x, quality, subsampling, backend: str, num_threads, host: bool = True) -> tuple[Coefficients, list[np.ndarray]]:
    """Turn images or a container into a validated container and (``host``) host component arrays."""
    if isinstance(x, Coefficients):
        if quality is not None:
            raise ValueError(
                "quality must be None when a Coefficients container is given: its coefficients are "
                f"already quantised (at qualities {np.unique(np.asarray(x.quality)).tolist()})"
            )
        if subsampling is not None:
            check_subsampling(subsampling, none_ok=True)
        own = check_components(x)
        if subsampling is not None and subsampling != own:
            raise ValueError(
                f"subsampling={subsampling!r} does not fit the Coefficients container, which was made with "
                f"subsampling={own!r}; pass subsampling=None or {own!r}"
            )
        # a np.str_ subsampling becomes the plain str the C layer types
        coefs = x if type(x.subsampling) is str else dataclasses.replace(x, subsampling=own)
    else:
        if quality is None:
            raise TypeError("quality is required when images are given (an int 1..100 or one per image)")
        coefs = lossy.coefficients(
            x,
            quality,
            subsampling=subsampling,  # None: Pillow's default for the images' channel count
            backend="numpy" if backend == "numpy" else "auto",
            num_threads=num_threads,
        )
    return coefs, ([to_host_int16(c) for c in coefs.components] if host else [])


def _bits_of(coefs: Coefficients, comps: list[np.ndarray], optimize: bool, backend: str, threads: int) -> np.ndarray:
    h_samp, v_samp = SUBSAMPLING_FACTORS[coefs.subsampling]
    if backend == "cpu":
        return _native().entropy_bits(tuple(comps), h_samp, v_samp, optimize, threads)
    out = np.empty(coefs.batch_size, dtype=np.int64)
    for i in range(coefs.batch_size):
        planes = [c[i] for c in comps]
        out[i] = er.image_bits(planes, coefs.height, coefs.width, coefs.subsampling, optimize)
    return out


def bits(
    images_or_coefficients: Any,
    quality: int | Sequence[int] | None = None,
    *,
    subsampling: str | None = None,
    optimize: bool = False,
    backend: str = "auto",
    num_threads: int | None = None,
) -> np.ndarray:
    """Exact entropy-coded bits of each image's baseline JPEG scan.

    The count is what libjpeg-turbo's Huffman encoder emits for the scan,
    before 0xFF byte stuffing and the final 1-bit padding:
    ``sum over symbols (code length + magnitude bits)``, with DC differences
    per component, AC run/size symbols, ZRL and EOB, over the real blocks and
    the dummy blocks libjpeg adds to complete the last MCU row and column.
    The file holds ``ceil(bits / 8)`` scan bytes plus one stuffed 0x00 after
    each 0xFF byte.

    Parameters
    ----------
    images_or_coefficients : array_like or Coefficients
        uint8 images as for :func:`helmholtz.jpeg.roundtrip`, or the container
        returned by :func:`helmholtz.jpeg.coefficients` (then ``quality`` must
        be None and ``subsampling`` None or the container's).
    quality : int or sequence of int, optional
        JPEG quality 1..100 for all images or one per image; required for images.
    subsampling : {None, "4:2:0", "4:2:2", "4:4:4"}, optional
        Chroma subsampling of images. None (the default) is Pillow's default,
        what ``save(..., "JPEG", quality=q)`` without a ``subsampling``
        argument does: ``"4:2:0"`` for colour, and for grayscale a 1x1 SOF
        (the bits of a grayscale scan do not depend on it).
    optimize : bool
        False: the standard Annex K tables. True: per-image optimal tables
        built as libjpeg's ``jpeg_gen_optimal_table`` (Pillow's ``optimize=True``).
    backend : {"auto", "cpu", "numpy"}
        ``"cpu"``: the C core (GIL released, all cores); ``"numpy"``: the
        readable reference; ``"auto"``: ``"cpu"`` when it is built.
    num_threads : int, optional
        Threads for the C core; all cores by default.

    Returns
    -------
    ndarray
        int64 ``(N,)``, one count per image.

    Raises
    ------
    TypeError
        For a missing quality, a non-bool ``optimize`` or a bad argument type.
    ValueError
        For bad images, qualities or subsampling, a container that does not
        fit the other arguments, or coefficients outside the baseline range.

    Examples
    --------
    >>> import numpy as np
    >>> from helmholtz import jpeg
    >>> img = np.full((16, 16, 3), 128, np.uint8)
    >>> int(jpeg.bits(img, 75)[0])  # 4 luma blocks of 2 + 4 bits, 2 chroma blocks of 2 + 2
    32

    A list of images of different sizes (or of Coefficients containers) gives
    one count per item.
    """
    optimize = _check_flag(optimize, "optimize")
    if isinstance(images_or_coefficients, (list, tuple)):
        return ragged.bits(images_or_coefficients, quality, subsampling=subsampling, optimize=optimize, backend=backend,
                            num_threads=num_threads)
    if _wants_cuda(images_or_coefficients, backend):
        return _bits_cuda(images_or_coefficients, quality, subsampling, optimize)
    be = _resolve(backend)
    threads = lossy.thread_count(num_threads)
    if be == "cpu" and not isinstance(images_or_coefficients, Coefficients):
        if quality is None:
            raise TypeError("quality is required when images are given (an int 1..100 or one per image)")
        return _fused_bits(images_or_coefficients, lambda n: as_qualities(quality, n)[None, :], subsampling, optimize, threads)[0]
    coefs, comps = _coefficients(images_or_coefficients, quality, subsampling, be, num_threads)
    return _bits_of(coefs, comps, optimize, be, threads)


def _fused_bits(images, qualities_for, subsampling, optimize: bool, threads: int, chunk: int | None = None) -> np.ndarray:
    """int64 (Q, N) straight from images: the C core quantises and counts in one pass per
    quality from one forward transform, without writing coefficient arrays."""
    if subsampling is not None:
        check_subsampling(subsampling, none_ok=True)
    batch = as_batch(images)
    subsampling = resolve_subsampling(subsampling, int(batch.array.shape[3]))
    cpu = registry.get("cpu")
    grid = qualities_for(batch.n)
    out = np.empty((grid.shape[0], batch.n), dtype=np.int64)
    step = chunk or batch.n
    for start in range(0, batch.n, step):
        stop = min(start + step, batch.n)
        out[:, start:stop] = cpu.bits(batch.array[start:stop], np.ascontiguousarray(grid[:, start:stop]), subsampling, optimize, threads)
    return out


def _wants_cuda(x: Any, backend: Any) -> bool:
    """True for backend='cuda', or 'auto' with images / coefficients on a CUDA device."""
    if backend == "cuda":
        return True
    if backend != "auto":
        return False
    probe = x.components[0] if isinstance(x, Coefficients) and x.components else x
    return registry.on_cuda(probe)


def _bits_cuda(x: Any, quality, subsampling, optimize: bool):
    """Bits counted on the GPU from device coefficients; the result stays on the device."""
    _resolve("cuda")
    from . import cuda

    if isinstance(x, Coefficients):
        coefs, _ = _coefficients(x, quality, subsampling, "cuda", None, host=False)
    else:
        if quality is None:
            raise TypeError("quality is required when images are given (an int 1..100 or one per image)")
        coefs = lossy.coefficients(x, quality, subsampling=subsampling, backend="cuda")
    return cuda.bits(list(coefs.components), coefs.subsampling, optimize=optimize)


def bits_many(
    images: Any,
    qualities: Sequence[int],
    *,
    subsampling: str | None = None,
    optimize: bool = False,
    backend: str = "auto",
    num_threads: int | None = None,
) -> np.ndarray:
    """Bits of every image at several qualities, transforming once.

    Parameters
    ----------
    images : array_like
        uint8 images as for :func:`helmholtz.jpeg.roundtrip`.
    qualities : sequence of int
        Qualities 1..100.
    subsampling, optimize, backend, num_threads
        As for :func:`bits`.

    Returns
    -------
    ndarray
        int64 ``(len(qualities), N)``; row ``k`` equals ``bits(images, qualities[k])``.
        A list of images of different sizes is accepted too.
    """
    optimize = _check_flag(optimize, "optimize")
    if isinstance(images, (list, tuple)):
        return ragged.bits_many(images, qualities, subsampling=subsampling, optimize=optimize, backend=backend,
                                 num_threads=num_threads)
    if _wants_cuda(images, backend):
        per_quality = lossy.coefficients_many(images, qualities, subsampling=subsampling, backend="cuda")
        rows = [_bits_cuda(c, None, None, optimize) for c in per_quality]
        stack = __import__("torch").stack if type(rows[0]).__module__.startswith("torch") else __import__("cupy").stack
        return stack(rows)
    be = _resolve(backend)
    threads = lossy.thread_count(num_threads)
    if be == "numpy":
        many = lossy.coefficients_many(images, qualities, subsampling=subsampling, backend="numpy")
        return np.stack([_bits_of(c, [to_host_int16(x) for x in c.components], optimize, be, threads) for c in many])
    # The C path: quantise and count in one pass per quality from one forward transform,
    # chunk by chunk so that the working set of a large batch stays bounded.
    qlist = as_quality_list(qualities)
    return _fused_bits(images, lambda n: np.repeat(qlist[:, None], n, axis=1), subsampling, optimize, threads, _CHUNK)


_CHUNK = 16384


def encode(
    images_or_coefficients: Any,
    quality: int | Sequence[int] | None = None,
    *,
    subsampling: str | None = None,
    optimize: bool = False,
    backend: str = "auto",
    num_threads: int | None = None,
) -> list[bytes]:
    """Baseline JFIF files byte-identical to Pillow's.

    Entry ``i`` equals the bytes of
    ``Image.fromarray(images[i]).save(buf, "JPEG", quality=q, subsampling=s, optimize=optimize)``
    (grayscale: ``Image.fromarray(images[i][..., 0])``): SOI, APP0 (JFIF 1.01,
    density 1:1), DQT, SOF0, DHT (standard or optimal tables), SOS, the scan
    with byte stuffing and 1-bit padding, EOI. Its scan holds exactly
    :func:`bits` entropy-coded bits.

    Parameters
    ----------
    images_or_coefficients, quality, subsampling, optimize, backend, num_threads
        As for :func:`bits`.

    Returns
    -------
    list of bytes
        One complete file per image.

    Notes
    -----
    With the default ``subsampling=None`` the files equal Pillow's
    ``save(buf, "JPEG", quality=q)`` without a ``subsampling`` argument:
    4:2:0 for colour, and a 1x1 luma SOF (0x11) for grayscale. Pillow given
    an explicit ``subsampling`` writes its luma sampling factors into the SOF
    header even for grayscale images (``2x2`` for ``"4:2:0"``); so does this
    function, so every explicit value stays equal to Pillow's file with the
    same argument. A container is written with its own ``subsampling``.
    A list of images of different sizes (or of Coefficients containers) gives
    one file per item.
    """
    optimize = _check_flag(optimize, "optimize")
    if isinstance(images_or_coefficients, (list, tuple)):
        return ragged.encode(images_or_coefficients, quality, subsampling=subsampling, optimize=optimize, backend=backend,
                              num_threads=num_threads)
    be = _resolve(backend)
    threads = lossy.thread_count(num_threads)
    coefs, comps = _coefficients(images_or_coefficients, quality, subsampling, be, num_threads)
    tables = np.ascontiguousarray(np.asarray(coefs.tables), dtype=np.uint16)
    h_samp, v_samp = SUBSAMPLING_FACTORS[coefs.subsampling]
    if be == "cpu":
        return _native().entropy_encode(tuple(comps), h_samp, v_samp, coefs.height, coefs.width, tables, optimize, threads)
    out = []
    for i in range(coefs.batch_size):
        planes = [c[i] for c in comps]
        out.append(er.encode_image(planes, coefs.height, coefs.width, coefs.subsampling, tables[i], optimize))
    return out


def symbol_frequencies(
    coefs: Coefficients, *, backend: str = "auto", num_threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Huffman symbol counts of each image's scan.

    Returns
    -------
    freq : ndarray
        int64 ``(N, 4, 256)``: occurrences of each symbol in table slot
        DC luma, AC luma, DC chroma, AC chroma (chroma slots zero for grayscale).
    extra : ndarray
        int64 ``(N,)``: the magnitude bits that follow the symbols.
    """
    if not isinstance(coefs, Coefficients):
        raise TypeError(f"coefs must be a helmholtz.jpeg.Coefficients; got {type(coefs).__name__}")
    be = _resolve(backend)
    threads = lossy.thread_count(num_threads)  # checked on every backend, used by the C core
    coefs, comps = _coefficients(coefs, None, None, be, num_threads)
    h_samp, v_samp = SUBSAMPLING_FACTORS[coefs.subsampling]
    if be == "cpu":
        return _native().entropy_frequencies(tuple(comps), h_samp, v_samp, threads)
    freq = np.zeros((coefs.batch_size, 4, 256), dtype=np.int64)
    extra = np.zeros(coefs.batch_size, dtype=np.int64)
    for i in range(coefs.batch_size):
        planes = [c[i] for c in comps]
        syms = er.image_symbols(planes, coefs.height, coefs.width, coefs.subsampling)
        freq[i] = er.symbol_frequencies(syms)
        extra[i] = sum(n for _, _, n, _ in syms)
    return freq, extra
