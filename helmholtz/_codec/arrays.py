"""One place that validates and normalises arrays at the Python boundary.

Inputs may be NumPy arrays, CPU torch tensors, CuPy arrays, or anything that
speaks the buffer protocol or DLPack. They are viewed (never copied unless
they are non-contiguous) as uint8 ``(N, H, W, C)`` batches, and results are
handed back in the kind of array that came in.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = [
    "Batch",
    "as_batch",
    "as_qualities",
    "as_quality_list",
    "as_threads",
    "array_dtype_name",
    "check_normalization",
    "check_subsampling",
    "resolve_subsampling",
    "to_host_int16",
    "wrap_torch",
    "MAX_THREADS",
    "SUBSAMPLINGS",
    "DEFAULT_SUBSAMPLING",
]

SUBSAMPLINGS = ("4:4:4", "4:2:2", "4:2:0")

#: What ``subsampling=None`` means for colour images: Pillow's (libjpeg's) default, 2x2 luma sampling.
DEFAULT_SUBSAMPLING = "4:2:0"


@dataclass
class Batch:
    """A validated image batch.

    Attributes
    ----------
    array : Any
        ``(N, H, W, C)`` uint8, C-contiguous; a NumPy array, or a CuPy array
        / torch CUDA tensor for the GPU backend.
    shape : tuple
        The caller's original shape, restored on output.
    wrap : callable
        Turns a NumPy (or device) result back into the caller's kind.
    device : str
        ``"cpu"`` or ``"cuda"``.
    """

    array: Any
    shape: tuple
    wrap: Callable[[Any], Any]
    device: str = "cpu"
    kind: str = "numpy"

    @property
    def n(self) -> int:
        return self.array.shape[0]


#: More threads than this is surely a mistake (and would overflow the C core's int).
MAX_THREADS = 4096


def _identity(x):
    return x


def wrap_torch(x):
    """A NumPy (or DLPack) result as a torch tensor, zero-copy."""
    import torch

    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    return torch.from_dlpack(x)


def array_dtype_name(x: Any) -> str:
    """``"int16"`` for NumPy, CuPy and torch arrays alike (torch spells it ``torch.int16``)."""
    return str(x.dtype).removeprefix("torch.")


def to_host_int16(x: Any) -> np.ndarray:
    """A C-contiguous NumPy int16 view (or copy) of an array on the host or a device."""
    if hasattr(x, "get") and type(x).__module__.startswith("cupy"):
        x = x.get()
    elif type(x).__module__.startswith("torch"):
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(x, dtype=np.int16)


def as_threads(num_threads: Any, default: Callable[[], int]) -> int:
    """Validate ``num_threads`` (None for ``default()``) -> an int in 1..MAX_THREADS."""
    if num_threads is None:
        return default()
    if isinstance(num_threads, (bool, np.bool_)):
        raise TypeError(f"num_threads must be None or an int >= 1; got {num_threads!r}")
    try:
        value = operator.index(num_threads)
    except TypeError:
        raise TypeError(f"num_threads must be None or an int >= 1; got {num_threads!r}") from None
    if not 1 <= value <= MAX_THREADS:
        raise ValueError(f"num_threads must be None or an int in 1..{MAX_THREADS}; got {value}")
    return int(value)


def _batch_shape(shape: tuple, name: str) -> tuple:
    """Map an image shape to (N, H, W, C) or raise a ValueError naming the problem."""
    ndim = len(shape)
    if ndim == 2:
        batch = (1, shape[0], shape[1], 1)
    elif ndim == 3:
        batch = (1,) + tuple(shape)
    elif ndim == 4:
        batch = tuple(shape)
    else:
        raise ValueError(
            f"{name} must have shape (H, W), (H, W, C) or (N, H, W, C) with C in (1, 3); got {ndim} dimensions {tuple(shape)}"
        )
    n, h, w, c = batch
    if c not in (1, 3):
        raise ValueError(f"{name} must have 1 (grayscale) or 3 (RGB) channels in the last axis; got shape {tuple(shape)} with {c}")
    if n == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(shape)}); pass at least one image")
    if h == 0 or w == 0:
        raise ValueError(f"{name} has a zero-size image (shape {tuple(shape)}); height and width must be >= 1")
    if h > 65500 or w > 65500:
        raise ValueError(f"{name}: JPEG images are at most 65500 pixels on a side; got shape {tuple(shape)}")
    return batch


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "device")


def _is_cupy(x) -> bool:
    return type(x).__module__.startswith("cupy")


def as_batch(images: Any, name: str = "images") -> Batch:
    """Validate ``images`` and view them as a C-contiguous uint8 (N, H, W, C) batch.

    Raises
    ------
    TypeError
        If ``images`` is not an array-like of dtype uint8.
    ValueError
        If the rank, the channel count or a size is not acceptable.
    """
    wrap: Callable = _identity
    device, kind = "cpu", "numpy"
    if isinstance(images, np.ndarray):
        arr = images
    elif _is_torch(images):
        kind = "torch"
        if images.device.type == "cuda":
            device = "cuda"
            arr = images
        elif images.device.type != "cpu":
            raise TypeError(f"{name}: tensors on device {images.device} are not supported; use a CPU or CUDA tensor")
        else:
            import torch

            if images.dtype != torch.uint8:
                raise TypeError(f"{name} must have dtype uint8; got torch tensor of dtype {images.dtype}")
            arr = np.from_dlpack(images.detach())
            wrap = wrap_torch
    elif _is_cupy(images):
        device, kind, arr = "cuda", "cupy", images
    else:
        try:
            arr = np.asarray(memoryview(images)) if not hasattr(images, "__array_interface__") else np.asarray(images)
        except TypeError:
            if hasattr(images, "__dlpack__"):
                arr = np.from_dlpack(images)
            else:
                raise TypeError(
                    f"{name} must be a NumPy array, a torch or CuPy tensor, or support the buffer protocol or DLPack; got {type(images).__name__}"
                ) from None
    dtype = arr.dtype
    if str(dtype) not in ("uint8", "torch.uint8"):
        raise TypeError(f"{name} must have dtype uint8; got {dtype}")
    shape = tuple(arr.shape)
    batch_shape = _batch_shape(shape, name)
    if device == "cpu":
        arr = np.ascontiguousarray(arr).reshape(batch_shape)
    else:
        arr = arr.reshape(batch_shape)
        if kind == "cupy":
            import cupy

            arr = cupy.ascontiguousarray(arr)
        else:
            arr = arr.contiguous()
    return Batch(arr, shape, wrap, device, kind)


def as_qualities(quality: Any, n: int, name: str = "quality") -> np.ndarray:
    """Validate ``quality`` (an int or one int per image) and return int32 (n,)."""
    if isinstance(quality, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int in 1..100 or a sequence of such ints; got a bool")
    if np.ndim(quality) == 0:
        try:
            q = operator.index(quality)
        except TypeError:
            raise TypeError(f"{name} must be an int in 1..100 or one int per image; got {quality!r}") from None
        if not 1 <= q <= 100:  # before NumPy sees it: 2**63 would overflow int64
            raise ValueError(f"{name} must be in 1..100; got {q}")
        values = np.full(n, q, dtype=np.int64)
    else:
        values = _int_array(quality, name)
        if values.ndim != 1:
            raise ValueError(f"{name} must be an int or a 1-D sequence with one int per image; got shape {values.shape}")
        if values.dtype.kind not in "iu":
            raise TypeError(f"{name} must hold integers; got dtype {values.dtype}")
        if values.shape[0] != n:
            raise ValueError(f"{name} has {values.shape[0]} entries but there are {n} images; give one int or one per image")
    # checked in the values' own dtype: a cast first would wrap uint64 2**63 to a negative number
    if values.size and (values.min() < 1 or values.max() > 100):
        bad = values[(values < 1) | (values > 100)][0]
        raise ValueError(f"{name} must be in 1..100; got {int(bad)}")
    return values.astype(np.int32)


def as_quality_list(qualities: Any, name: str = "qualities") -> np.ndarray:
    """Validate a non-empty list of qualities (one result per entry) -> int32 (Q,)."""
    values = _int_array(qualities, name)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of ints in 1..100; got {qualities!r}")
    if values.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers; got dtype {values.dtype}")
    if values.min() < 1 or values.max() > 100:
        raise ValueError(f"{name} must be in 1..100; got {values.tolist()}")
    return values.astype(np.int32)


def _int_array(values: Any, name: str) -> np.ndarray:
    """``np.asarray`` that names the argument when the values do not fit an integer array."""
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{name} must be ints in 1..100; got {values!r}")
    try:
        arr = np.asarray(values)
    except (OverflowError, ValueError) as exc:
        raise ValueError(f"{name} must be ints in 1..100; got {values!r} ({exc})") from None
    if arr.dtype.kind in "fO" and not isinstance(values, np.ndarray) and arr.ndim == 1:
        # Python ints beyond int64 make NumPy pick float64 or object: report the range, not the dtype
        try:
            ints = [operator.index(v) for v in (arr.tolist() if arr.dtype.kind == "O" else values)]
        except TypeError:
            return arr
        bad = next((v for v in ints if not 1 <= v <= 100), None)
        if bad is not None:
            raise ValueError(f"{name} must be in 1..100; got {bad}")
    return arr


def check_subsampling(subsampling: Any, name: str = "subsampling", none_ok: bool = False) -> str:
    """Return a valid subsampling name (a plain ``str``) or raise naming the choices.

    ``none_ok`` only words the message for arguments where None (Pillow's
    default) is accepted too; None itself is resolved by :func:`resolve_subsampling`.
    """
    if not isinstance(subsampling, str) or subsampling not in SUBSAMPLINGS:  # np.str_ is a str and passes
        choices = ("None (Pillow's default) or " if none_ok else "") + "one of " + ", ".join(repr(s) for s in SUBSAMPLINGS)
        kind = ValueError if isinstance(subsampling, str) else TypeError
        raise kind(f"{name} must be {choices}; got {subsampling!r}")
    return str(subsampling)  # np.str_ -> str, which the Cython layer types


def resolve_subsampling(subsampling: Any, channels: int, name: str = "subsampling") -> str:
    """``subsampling`` checked, with None meaning Pillow's default for images of ``channels`` channels.

    Pillow's ``save(..., "JPEG", quality=q)`` without a ``subsampling``
    argument leaves libjpeg's defaults: 2x2 luma sampling (``"4:2:0"``) for
    colour and 1x1 (``"4:4:4"``) for grayscale, whose SOF then carries 0x11.
    The pixels and coefficients of a grayscale image do not depend on the
    choice; only the sampling factors written in its file header do.
    """
    if subsampling is None:
        return "4:4:4" if channels == 1 else DEFAULT_SUBSAMPLING
    return check_subsampling(subsampling, name, none_ok=True)


def check_normalization(dtype: Any, mean: Any, std: Any, channels: int):
    """Validate the float-output options; returns float32 (mean, std) of ``channels`` values or (None, None)."""
    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"dtype must be 'float32' or 'bfloat16'; got {dtype!r}")
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std, or neither")
    if mean is None:
        return None, None
    values = []
    for name, v in (("mean", mean), ("std", std)):
        a = np.asarray(v, np.float32).reshape(-1)
        if a.size not in (1, channels):
            raise ValueError(f"{name} must have 1 or {channels} values; got {a.size}")
        values.append(np.resize(a, channels))
    if np.any(values[1] == 0):
        raise ValueError("std must be nonzero")
    return values[0], values[1]

