"""The codec as torch custom ops: ``torch.ops.helmholtz.*`` (public face: :mod:`helmholtz.transforms`).

:func:`register` defines, once per process, these operators in the
``helmholtz`` namespace (``torch.library.custom_op``), each with a CPU kernel,
a CUDA kernel and a fake (meta) kernel, so that ``torch.compile(fullgraph=True)``
and ``torch.export`` trace through them:

==========================================================================  =====================================
``roundtrip(Tensor images, Tensor quality, str subsampling) -> Tensor``      :func:`helmholtz.jpeg.roundtrip`
``roundtrip_many(Tensor images, Tensor qualities, str subsampling)``         :func:`helmholtz.jpeg.roundtrip_many`
``roundtrip_float(Tensor images, Tensor quality, str subsampling,``          :func:`helmholtz.jpeg.roundtrip_float`
``ScalarType? dtype, float[]? mean, float[]? std) -> Tensor``
``coefficients(Tensor images, Tensor quality, str subsampling) -> Tensor[]``  ``jpeg.coefficients(...).components``
``reconstruct(Tensor[] components, Tensor tables, SymInt height,``           :func:`helmholtz.jpeg.reconstruct`
``SymInt width, str subsampling) -> Tensor``
``bits(Tensor images, Tensor quality, str subsampling, bool optimize)``      :func:`helmholtz.jpeg.bits`
``jpeg(Tensor x, Tensor quality, str subsampling) -> Tensor``                the transform's op (below)
==========================================================================  =====================================

``images`` are uint8 channels-last, as :mod:`helmholtz.jpeg` takes them;
``quality`` is an integer tensor, one value for all images (0-d) or one per
image, on the CPU or on the images' device (a CUDA quality tensor is read back
to the host until the GPU path takes device-resident qualities). ``tables``
are the ``(N, 2, 8, 8)`` quantisation steps of a :class:`helmholtz.jpeg.Coefficients`.

``jpeg`` is the op behind :class:`helmholtz.transforms.JPEG`: channels-first
``(..., C, H, W)`` images, uint8 or floating point in ``[0, 1]`` (rounded to
8 bits first, as saving would; NaN is refused), one quality per image, where
quality 0 leaves that image unchanged. It returns the input's shape and dtype,
and its gradient is straight-through (the identity, as BPDA uses).

CPU kernels run the C core on zero-copy NumPy views of contiguous tensors with
``torch.get_num_threads()`` threads (1 inside DataLoader workers); CUDA kernels
call :mod:`helmholtz.jpeg` with ``backend="cuda"`` on the tensors themselves
(DLPack, torch's current stream). Importing this module does not import torch;
:func:`register` does.
"""

import threading
from typing import Any

import numpy as np

from .. import jpeg
from .._extras import require
from .._codec import reference
from .._codec import registry
from .._codec.arrays import check_subsampling
from .._codec.container import Coefficients

__all__ = [
    "register",
    "registered",
    "OP_NAMES",
    "cpu_threads",
    "check_channels_first",
    "quantize_to_uint8",
    "roundtrip_rows_cpu",
    "to_channels_last",
    "channels_first_rows",
    "channels_first_from_rows",
    "jpeg_channels_first_cpu",
    "jpeg_channels_first_device",
]

#: The operators :func:`register` defines in the ``helmholtz`` namespace.
OP_NAMES = ("roundtrip", "roundtrip_many", "roundtrip_float", "coefficients", "reconstruct", "bits", "jpeg")

_SCHEMAS = {
    "roundtrip": '(Tensor images, Tensor quality, str subsampling="4:2:0") -> Tensor',
    "roundtrip_many": '(Tensor images, Tensor qualities, str subsampling="4:2:0") -> Tensor',
    "roundtrip_float": (
        '(Tensor images, Tensor quality, str subsampling="4:2:0", ScalarType? dtype=None, '
        "float[]? mean=None, float[]? std=None) -> Tensor"
    ),
    "coefficients": '(Tensor images, Tensor quality, str subsampling="4:2:0") -> Tensor[]',
    "reconstruct": '(Tensor[] components, Tensor tables, SymInt height, SymInt width, str subsampling="4:2:0") -> Tensor',
    "bits": '(Tensor images, Tensor quality, str subsampling="4:2:0", bool optimize=False) -> Tensor',
    "jpeg": '(Tensor x, Tensor quality, str subsampling="4:2:0") -> Tensor',
}

_lock = threading.Lock()
_namespace: Any = None


def registered() -> bool:
    """True once :func:`register` has defined the ops in this process."""
    return _namespace is not None


def register() -> Any:
    """Define the ``helmholtz::`` ops (once per process) and return ``torch.ops.helmholtz``.

    Call it before ``torch.export.load`` of a program that uses them in a
    fresh process; everything in :mod:`helmholtz.transforms` calls it itself.
    """
    global _namespace
    if _namespace is None:
        with _lock:
            if _namespace is None:
                torch = require("torch", purpose="the helmholtz torch ops")
                _define(torch)
                _namespace = torch.ops.helmholtz
    return _namespace


# ---- shared by the kernels and the transform's eager path ---------------------------------------

def cpu_threads() -> int:
    """Threads for the C core: torch's intra-op setting (1 in DataLoader workers)."""
    import torch

    return max(1, torch.get_num_threads())


_cpu_backend: Any = None


def _cpu():
    global _cpu_backend
    if _cpu_backend is None:
        _cpu_backend = registry.resolve("auto", "cpu")
    return _cpu_backend


def roundtrip_rows_cpu(rows: np.ndarray, quality: np.ndarray, subsampling: str, threads: int) -> np.ndarray:
    """uint8 C-contiguous ``(M, H, W, C)`` and int32 ``(M,)`` qualities -> a new uint8 array.

    Rows whose quality is 0 are copied unchanged. The caller has validated the
    shape, the qualities (0..100) and the subsampling.
    """
    quality = quality if quality.dtype == np.int32 else quality.astype(np.int32)
    if quality[0] != 0 if quality.size == 1 else quality.all():
        return _cpu().roundtrip(rows, quality.reshape(1, -1), subsampling, threads)[0]
    out = rows.copy()
    chosen = np.flatnonzero(quality)
    if chosen.size:
        out[chosen] = _cpu().roundtrip(np.ascontiguousarray(rows[chosen]), quality[chosen].reshape(1, -1), subsampling, threads)[0]
    return out


def to_channels_last(chw: np.ndarray) -> np.ndarray:
    """``(M, C, H, W)`` -> a C-contiguous ``(M, H, W, C)`` copy (or view, for C = 1)."""
    m, c, h, w = chw.shape
    if c == 1:
        return np.ascontiguousarray(chw).reshape(m, h, w, 1)
    out = np.empty((m, h, w, c), chw.dtype)
    for k in range(c):  # one plane at a time: three times faster than a strided transpose copy
        out[..., k] = chw[:, k]
    return out


def check_channels_first(x: Any, name: str = "x") -> tuple[int, int, int, int]:
    """Validate a ``(..., C, H, W)`` tensor's shape and dtype -> (images, C, H, W)."""
    import torch

    if x.ndim < 3 or x.shape[-3] not in (1, 3):
        raise ValueError(f"{name} must have shape (C, H, W) or (..., C, H, W) with C in (1, 3); got {tuple(x.shape)}")
    if x.dtype != torch.uint8 and not x.dtype.is_floating_point:
        raise TypeError(f"{name} must be uint8 or floating point (in [0, 1]); got {x.dtype}")
    shape = x.shape
    c, h, w = shape[-3], shape[-2], shape[-1]
    if h < 1 or w < 1 or h > 65500 or w > 65500:
        raise ValueError(f"{name}: JPEG images are 1..65500 pixels on a side; got shape {tuple(shape)}")
    m = 1
    for size in shape[:-3]:  # a plain loop: torch.compile traces it, also with symbolic sizes
        m = m * size
    return m, c, h, w


def quantize_to_uint8(a: np.ndarray, name: str = "x") -> np.ndarray:
    """Float pixels in [0, 1] -> uint8 ``round(clip(a, 0, 1) * 255)``; NaN raises ValueError."""
    work = a.dtype.type if a.dtype.itemsize >= 4 else np.float32  # float16: 255 * a needs more precision
    scaled = np.multiply(a, work(255), dtype=work)
    np.clip(scaled, 0, 255, out=scaled)
    if np.isnan(scaled.sum()):  # clipped, only NaN makes the sum NaN
        raise ValueError(f"{name} contains NaN; JPEG needs finite pixel values in [0, 1]")
    return np.rint(scaled, out=scaled).astype(np.uint8)


def channels_first_rows(x: Any, dims: tuple | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """A ``(..., C, H, W)`` CPU tensor -> uint8 C-contiguous rows ``(M, H, W, C)``.

    Also returns the float pixels as a NumPy ``(M, C, H, W)`` array (None for
    uint8), from which :func:`channels_first_from_rows` restores images left
    unchanged. ``dims`` is :func:`check_channels_first`'s answer, when the
    caller has it.
    """
    import torch

    m, c, h, w = dims or check_channels_first(x)
    x = x.detach()
    if x.dtype == torch.uint8:
        return to_channels_last(x.numpy().reshape(m, c, h, w)), None
    f = (x if x.dtype in (torch.float32, torch.float64) else x.float()).numpy().reshape(m, c, h, w)
    return to_channels_last(quantize_to_uint8(f)), f


def channels_first_from_rows(x: Any, rows: np.ndarray, quality: np.ndarray, f: np.ndarray | None) -> Any:
    """Compressed uint8 rows ``(M, H, W, C)`` -> a new tensor of ``x``'s shape and dtype.

    Float results are ``rows / 255``; images whose quality is 0 keep ``x``'s values.
    """
    import torch

    out = rows.transpose(0, 3, 1, 2)
    shape = tuple(x.shape)
    if f is None:
        return torch.from_numpy(np.ascontiguousarray(out).reshape(shape))
    dtype = f.dtype.type
    result = np.ascontiguousarray(out, dtype=dtype)
    result /= dtype(255)
    if not quality.all():
        keep = quality == 0
        result[keep] = f[keep]
    return torch.from_numpy(result.reshape(shape)).to(x.dtype)


def jpeg_channels_first_cpu(x: Any, quality: np.ndarray, subsampling: str, threads: int, dims: tuple | None = None) -> Any:
    """The ``jpeg`` op on a CPU tensor: a new tensor of ``x``'s shape and dtype.

    ``x`` is ``(..., C, H, W)`` uint8 or float in [0, 1]; ``quality`` int32,
    one per image (validated, 0 = unchanged).
    """
    rows, f = channels_first_rows(x, dims)
    return channels_first_from_rows(x, roundtrip_rows_cpu(rows, quality, subsampling, threads), quality, f)


def jpeg_channels_first_device(x: Any, quality: np.ndarray, subsampling: str) -> Any:
    """The ``jpeg`` op on a device tensor, in torch ops around ``helmholtz.jpeg`` with ``backend="cuda"``.

    As :func:`jpeg_channels_first_cpu`: ``x`` is ``(..., C, H, W)`` uint8 or
    float in [0, 1], ``quality`` validated int32, one per image (0 = unchanged);
    returns a new tensor of ``x``'s shape and dtype on ``x``'s device.
    """
    import torch

    m, c, h, w = check_channels_first(x)
    flat = x.detach().reshape(m, c, h, w)
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    if x.dtype == torch.uint8:
        u8 = flat
    else:
        # the NaN check reads a flag back (a sync), which a CUDA graph capture must not do
        capturing = x.is_cuda and torch.cuda.is_current_stream_capturing()
        if not capturing and bool(torch.isnan(flat).any()):
            raise ValueError("x contains NaN; JPEG needs finite pixel values in [0, 1]")
        u8 = torch.nan_to_num(flat.to(work), nan=0.0).mul(255).clamp(0, 255).round().to(torch.uint8)
    rows = u8.permute(0, 2, 3, 1).contiguous()
    chosen = np.flatnonzero(quality)
    if chosen.size == m:
        out = jpeg.roundtrip(rows, quality, subsampling=subsampling, backend="cuda")
    else:
        out = rows.clone()
        if chosen.size:
            index = torch.from_numpy(chosen).to(x.device)
            out[index] = jpeg.roundtrip(rows[index], quality[chosen], subsampling=subsampling, backend="cuda")
    out = out.permute(0, 3, 1, 2)
    if x.dtype == torch.uint8:
        return out.contiguous().reshape(x.shape)
    result = (out.to(work) / 255).to(x.dtype)
    if chosen.size < m:  # untouched images keep their exact float values
        keep = torch.from_numpy(quality == 0).to(x.device)
        result = torch.where(keep[:, None, None, None], flat, result)
    return result.contiguous().reshape(x.shape)


# ---- kernels --------------------------------------------------------------------------------------

def _device_quality(quality: Any) -> Any:
    """A CUDA quality tensor as the kernels take it in place (int32, no read-back); host tensors as host arrays."""
    import torch

    if isinstance(quality, torch.Tensor) and quality.device.type == "cuda":
        if quality.dtype.is_floating_point or quality.dtype.is_complex or quality.dtype == torch.bool:
            raise TypeError(f"quality must be an integer tensor (one value, or one per image); got dtype {quality.dtype}")
        return quality.detach().to(torch.int32)
    return _host_quality(quality)


def _host_quality(quality: Any) -> np.ndarray:
    """The quality tensor as a host integer array (a device tensor is read back: a host sync)."""
    import torch

    if not isinstance(quality, torch.Tensor):
        raise TypeError(f"quality must be an integer tensor; got {type(quality).__name__}")
    if quality.dtype.is_floating_point or quality.dtype.is_complex or quality.dtype == torch.bool:
        raise TypeError(f"quality must be an integer tensor (one value, or one per image); got dtype {quality.dtype}")
    return quality.detach().cpu().numpy()


def _np(images: Any) -> np.ndarray:
    """A zero-copy NumPy view of a CPU tensor (contiguous copy first when it is not)."""
    return images.detach().contiguous().numpy()


def _image_dims(images: Any) -> tuple:
    """(N, H, W, C, single) of a jpeg-style image tensor, or a ValueError as helmholtz.jpeg gives."""
    shape = tuple(images.shape)
    if len(shape) == 2:
        dims = (1, shape[0], shape[1], 1, True)
    elif len(shape) == 3:
        dims = (1, shape[0], shape[1], shape[2], True)
    elif len(shape) == 4:
        dims = (shape[0], shape[1], shape[2], shape[3], False)
    else:
        dims = (0, 0, 0, 0, False)
    if dims[3] not in (1, 3):
        raise ValueError(f"images must have shape (H, W), (H, W, C) or (N, H, W, C) with C in (1, 3); got {shape}")
    return dims


def _check_uint8(images: Any, name: str = "images") -> None:
    import torch

    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(images).__name__}")
    if images.dtype != torch.uint8:
        raise TypeError(f"{name} must have dtype uint8; got {images.dtype}")


def _dtype_name(torch, dtype: Any) -> str:
    if dtype is None or dtype == torch.float32:
        return "float32"
    if dtype == torch.bfloat16:
        return "bfloat16"
    raise ValueError(f"dtype must be torch.float32 or torch.bfloat16; got {dtype}")


def _define(torch) -> None:
    """Define the ops; called once by :func:`register` under its lock."""
    lib_op = torch.library.custom_op

    def op(name, cpu, cuda, fake):
        o = lib_op(f"helmholtz::{name}", cpu, mutates_args=(), device_types="cpu", schema=_SCHEMAS[name])
        o.register_kernel("cuda")(cuda)
        o.register_fake(fake)
        return o

    def pixel_kernels(fn, in_place_quality: bool = False):
        """CPU and CUDA kernels of an op that is ``fn(images, quality, subsampling)`` of helmholtz.jpeg.

        ``in_place_quality``: the CUDA kernels read a device quality tensor in place (no host sync).
        """
        read_quality = _device_quality if in_place_quality else _host_quality

        def cpu(images, quality, subsampling="4:2:0"):
            _check_uint8(images)
            return torch.from_numpy(fn(_np(images), _host_quality(quality), subsampling=subsampling, num_threads=cpu_threads()))

        def cuda(images, quality, subsampling="4:2:0"):
            _check_uint8(images)
            return fn(images.detach(), read_quality(quality), subsampling=subsampling, backend="cuda")

        return cpu, cuda

    # -- roundtrip
    def roundtrip_fake(images, quality, subsampling="4:2:0"):
        _check_uint8(images)
        _image_dims(images)
        check_subsampling(subsampling)
        return images.new_empty(images.shape)

    op("roundtrip", *pixel_kernels(jpeg.roundtrip, in_place_quality=True), roundtrip_fake)

    # -- roundtrip_many
    def many_fake(images, qualities, subsampling="4:2:0"):
        _check_uint8(images)
        _image_dims(images)
        check_subsampling(subsampling)
        if qualities.ndim != 1:
            raise ValueError(f"qualities must be a 1-D tensor of qualities; got shape {tuple(qualities.shape)}")
        return images.new_empty((qualities.shape[0],) + tuple(images.shape))

    op("roundtrip_many", *pixel_kernels(jpeg.roundtrip_many), many_fake)

    # -- roundtrip_float
    def float_cpu(images, quality, subsampling="4:2:0", dtype=None, mean=None, std=None):
        _check_uint8(images)
        return jpeg.roundtrip_float(images.detach().contiguous(), _host_quality(quality), subsampling=subsampling,
                                    dtype=_dtype_name(torch, dtype), mean=mean, std=std, num_threads=cpu_threads())

    def float_cuda(images, quality, subsampling="4:2:0", dtype=None, mean=None, std=None):
        _check_uint8(images)
        return jpeg.roundtrip_float(images.detach(), _device_quality(quality), subsampling=subsampling,
                                    dtype=_dtype_name(torch, dtype), mean=mean, std=std, backend="cuda")

    def float_fake(images, quality, subsampling="4:2:0", dtype=None, mean=None, std=None):
        _check_uint8(images)
        n, h, w, c, single = _image_dims(images)
        name = _dtype_name(torch, dtype)
        shape = (c, h, w) if single else (n, c, h, w)
        return images.new_empty(shape, dtype=torch.bfloat16 if name == "bfloat16" else torch.float32)

    op("roundtrip_float", float_cpu, float_cuda, float_fake)

    # -- coefficients
    def coefs_cpu(images, quality, subsampling="4:2:0"):
        _check_uint8(images)
        coefs = jpeg.coefficients(_np(images), _host_quality(quality), subsampling=subsampling, num_threads=cpu_threads())
        return [torch.from_numpy(np.ascontiguousarray(c)) for c in coefs.components]

    def coefs_cuda(images, quality, subsampling="4:2:0"):
        _check_uint8(images)
        coefs = jpeg.coefficients(images.detach(), _host_quality(quality), subsampling=subsampling, backend="cuda")
        return [c.contiguous() for c in coefs.components]

    def coefs_fake(images, quality, subsampling="4:2:0"):
        _check_uint8(images)
        n, h, w, c, _ = _image_dims(images)
        geoms = reference.component_geometry(h, w, c, check_subsampling(subsampling))
        return [images.new_empty((n, g.blocks_high, g.blocks_wide, 8, 8), dtype=torch.int16) for g in geoms]

    op("coefficients", coefs_cpu, coefs_cuda, coefs_fake)

    # -- reconstruct
    def _container(components, tables, height, width, subsampling, host):
        n = int(components[0].shape[0])
        c = 1 if len(components) == 1 else 3
        if host:
            comps = tuple(_np(x) for x in components)
            tabs = np.asarray(tables.detach().cpu().numpy(), dtype=np.int64)  # range-checked by jpeg.reconstruct
        else:
            comps = tuple(x.detach().contiguous() for x in components)
            tabs = tables.detach()
        # reconstruct reads the tables, never the qualities
        return Coefficients(comps, tabs, np.zeros(n, np.int32), subsampling, (n, int(height), int(width), c))

    def _check_tables(tables):
        if not isinstance(tables, torch.Tensor) or tables.dtype.is_floating_point or tables.dtype == torch.bool:
            raise TypeError("tables must be an integer tensor of quantisation steps, (N, 2, 8, 8)")

    def reconstruct_cpu(components, tables, height, width, subsampling="4:2:0"):
        _check_tables(tables)
        out = jpeg.reconstruct(_container(components, tables, height, width, subsampling, True), num_threads=cpu_threads())
        return torch.from_numpy(out)

    def reconstruct_cuda(components, tables, height, width, subsampling="4:2:0"):
        _check_tables(tables)
        return jpeg.reconstruct(_container(components, tables, height, width, subsampling, False), backend="cuda")

    def reconstruct_fake(components, tables, height, width, subsampling="4:2:0"):
        _check_tables(tables)
        if len(components) not in (1, 3):
            raise ValueError(f"components must hold 1 (grayscale) or 3 (Y, Cb, Cr) tensors; got {len(components)}")
        check_subsampling(subsampling)
        c = 1 if len(components) == 1 else 3
        return components[0].new_empty((components[0].shape[0], height, width, c), dtype=torch.uint8)

    op("reconstruct", reconstruct_cpu, reconstruct_cuda, reconstruct_fake)

    # -- bits
    def bits_cpu(images, quality, subsampling="4:2:0", optimize=False):
        _check_uint8(images)
        out = jpeg.bits(_np(images), _host_quality(quality), subsampling=subsampling, optimize=optimize, num_threads=cpu_threads())
        return torch.from_numpy(np.ascontiguousarray(out))

    def bits_cuda(images, quality, subsampling="4:2:0", optimize=False):
        _check_uint8(images)
        return jpeg.bits(images.detach(), _host_quality(quality), subsampling=subsampling, optimize=optimize, backend="cuda")

    def bits_fake(images, quality, subsampling="4:2:0", optimize=False):
        _check_uint8(images)
        n, *_ = _image_dims(images)
        check_subsampling(subsampling)
        return images.new_empty((n,), dtype=torch.int64)

    op("bits", bits_cpu, bits_cuda, bits_fake)

    # -- jpeg: the transform's op, channels first, uint8 or float, straight-through gradient
    def _per_image(quality, m):
        # one quality per image; 0 marks an image to leave unchanged (how JPEG applies its p)
        values = _host_quality(quality).astype(np.int64)
        if values.ndim == 0:
            values = np.full(m, values)
        if values.shape != (m,):
            raise ValueError(f"quality must hold one value or one per image ({m}); got shape {values.shape}")
        if values.min() < 0 or values.max() > 100:
            raise ValueError(f"quality must be in 1..100 (0 leaves an image unchanged); got {values.tolist()}")
        return values.astype(np.int32)

    def jpeg_cpu(x, quality, subsampling="4:2:0"):
        m, *_ = check_channels_first(x)
        return jpeg_channels_first_cpu(x, _per_image(quality, m), check_subsampling(subsampling), cpu_threads())

    def jpeg_cuda(x, quality, subsampling="4:2:0"):
        m, *_ = check_channels_first(x)
        return jpeg_channels_first_device(x, _per_image(quality, m), check_subsampling(subsampling))

    def jpeg_fake(x, quality, subsampling="4:2:0"):
        check_channels_first(x)
        check_subsampling(subsampling)
        return x.new_empty(x.shape)

    jpeg_op = op("jpeg", jpeg_cpu, jpeg_cuda, jpeg_fake)

    def jpeg_backward(ctx, grad):
        return grad, None, None  # straight-through: d jpeg(x) / dx taken as the identity

    jpeg_op.register_autograd(jpeg_backward)
