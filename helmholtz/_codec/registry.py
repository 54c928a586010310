"""The registry of codec backends.

Every backend computes the same integers; they differ in where and how fast.
helmholtz ships three, declared as entry points of the group
``helmholtz.codec_backends`` in its pyproject.toml, the way a third-party
backend would be:

``numpy``
    The readable reference, one image at a time.
``cpu``
    The C core through Cython, GIL released, images spread over threads.
``cuda``
    CUDA kernels through CuPy; needs ``pip install 'helmholtz-ml[cuda]'`` and a GPU.

A backend is loaded the first time it is asked for. Asking for one that
cannot run here raises :class:`helmholtz.errors.BackendUnavailable` naming
the fix.
"""

from __future__ import annotations

import os
import threading
from contextlib import suppress
from typing import Any, Protocol

from .._plugins import Registry
from ..errors import BackendUnavailable

__all__ = ["Backend", "BACKENDS", "AUTO", "available", "get", "loaded", "forget", "resolve", "default_threads", "on_cuda"]


class Backend(Protocol):
    """What a codec backend provides. All arrays are C-contiguous.

    ``qualities`` is int32 ``(Q, N)``: result ``q`` for image ``n`` uses
    quality ``qualities[q, n]``. The forward transform (colour conversion,
    downsampling, DCT) is shared by all ``Q`` qualities of an image.
    """

    name: str
    device: str

    def roundtrip(self, images, qualities, subsampling: str, num_threads: int) -> Any:
        """uint8 (N, H, W, C) -> uint8 (Q, N, H, W, C)."""

    def forward(self, images, qualities, subsampling: str, num_threads: int) -> list[list[Any]]:
        """uint8 (N, H, W, C) -> for each q, int16 blocks (N, bh, bw, 8, 8) per component."""

    def reconstruct(self, components, tables, height: int, width: int, subsampling: str, num_threads: int) -> Any:
        """Blocks per component + uint16 tables (N, 2, 8, 8) -> uint8 (N, H, W, C)."""


#: name -> "module:attr" of a zero-argument factory returning the backend.
BACKENDS = Registry("helmholtz.codec_backends", "backend")

#: What ``backend="auto"`` tries, in order, for images on each device.
AUTO = {"cpu": ("cpu", "numpy"), "cuda": ("cuda",)}

_instances: dict[str, Backend] = {}
_failures: dict[str, str] = {}
_lock = threading.Lock()


def get(name: Any) -> Backend:
    """Return the backend called ``name``, loading it on first use.

    Raises
    ------
    TypeError
        If ``name`` is not a string.
    ValueError
        If ``name`` is not a registered backend.
    BackendUnavailable
        If it is registered but cannot run here; the message says what to install.
    """
    if not isinstance(name, str):
        raise TypeError(f"backend must be a string such as 'auto', 'numpy', 'cpu' or 'cuda'; got {name!r}")
    if name in _instances:
        return _instances[name]
    if name in _failures:
        raise BackendUnavailable(_failures[name])
    if name not in BACKENDS:
        raise ValueError(f"backend must be 'auto' or one of {', '.join(map(repr, BACKENDS.names()))}; got {name!r}")
    with _lock:
        if name in _instances:
            return _instances[name]
        try:
            backend = BACKENDS.load(name)()
        except BackendUnavailable as exc:  # the plugin knows why and says how to fix it
            _failures[name] = str(exc)
            raise
        except ImportError as exc:
            _failures[name] = f"backend {name!r} cannot be loaded here ({type(exc).__name__}: {exc})"
            raise BackendUnavailable(_failures[name]) from None
        _instances[name] = backend
        return backend


def loaded() -> list[str]:
    """Names of the backends loaded so far in this process."""
    return sorted(_instances)


def forget(name: str | None = None) -> None:
    """Drop the cached backend ``name`` (all with None), so the next :func:`get` loads it again.

    For tests, and for a session that installed CuPy after a failed attempt.
    """
    with _lock:
        for table in (_instances, _failures):
            if name is None:
                table.clear()
            else:
                table.pop(name, None)
        BACKENDS.forget_loaded(name)


def available() -> list[str]:
    """Names of the backends that can run in this process (loads each once)."""
    names = []
    for name in BACKENDS.names():
        with suppress(BackendUnavailable):
            get(name)
            names.append(name)
    return names


def resolve(name: Any, device: str) -> Backend:
    """Pick the backend for ``name`` (or ``"auto"``) and an input living on ``device``."""
    if name == "auto":
        last: BackendUnavailable | None = None
        for candidate in AUTO[device]:
            try:
                return get(candidate)
            except BackendUnavailable as exc:
                last = exc
        assert last is not None
        raise last
    backend = get(name)
    if backend.device != device:
        raise ValueError(
            f"backend {name!r} runs on {backend.device} but the images are on {device}; "
            f"move them (e.g. .cpu() / .cuda()) or use backend='auto'"
        )
    return backend


def default_threads() -> int:
    """The number of cores this process may use."""
    with suppress(AttributeError):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def on_cuda(x: Any) -> bool:
    """True for CuPy arrays and torch CUDA tensors (checked without importing either)."""
    module = type(x).__module__
    if module.startswith("cupy"):
        return True
    return module.startswith("torch") and getattr(getattr(x, "device", None), "type", None) == "cuda"
