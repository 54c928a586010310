"""The registry of codec backends.

Every backend computes the same integers; they differ in where and how fast.

``numpy``
    The readable reference (:mod:`helmholtz._reference`), one image at a time.
``cpu``
    The C core through Cython, GIL released, images spread over threads.
    Present when the compiled extension was built (always, for a normal install).
``cuda``
    CUDA kernels through CuPy's RawModule. Needs ``pip install helmholtz[cuda]``
    and a GPU.

Backends register themselves here; asking for a missing one raises
:class:`BackendUnavailable` naming what to install.
"""

from __future__ import annotations

import os
from contextlib import suppress
from typing import Any, Protocol

import numpy as np

from . import _reference as ref

__all__ = [
    "Backend",
    "BackendUnavailable",
    "available",
    "get",
    "register",
    "resolve",
    "default_threads",
]


class BackendUnavailable(RuntimeError):
    """A backend was asked for that cannot run here; the message names the fix."""


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


_REGISTRY: dict[str, Backend] = {}
_MISSING: dict[str, str] = {}


def register(backend: Backend) -> None:
    """Add ``backend`` to the registry under ``backend.name``."""
    _REGISTRY[backend.name] = backend
    _MISSING.pop(backend.name, None)


def available() -> list[str]:
    """Names of the backends that can run in this process."""
    names = list(_REGISTRY)
    with suppress(BackendUnavailable):
        get("cuda")
        if "cuda" not in names:
            names.append("cuda")
    return names


def get(name: str) -> Backend:
    """Return the backend called ``name``.

    Raises
    ------
    ValueError
        If ``name`` is not a backend helmholtz knows.
    BackendUnavailable
        If it is known but cannot run here; the message says what to install.
    """
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name == "cuda":
        try:
            from . import _cuda  # imports CuPy lazily and raises BackendUnavailable with the fix
        except ImportError as exc:  # a build without the CUDA module
            raise BackendUnavailable(f"the 'cuda' backend is not part of this build of helmholtz ({exc})") from exc
        backend = _cuda.load_backend()
        register(backend)
        return backend
    if name in _MISSING:
        raise BackendUnavailable(_MISSING[name])
    known = ", ".join(repr(n) for n in ("auto", "numpy", "cpu", "cuda"))
    raise ValueError(f"backend must be one of {known}; got {name!r}")


def resolve(name: Any, device: str) -> Backend:
    """Pick the backend for ``name`` (or ``"auto"``) and an input living on ``device``."""
    if not isinstance(name, str):
        raise TypeError(f"backend must be a string such as 'auto', 'numpy', 'cpu' or 'cuda'; got {name!r}")
    if name == "auto":
        if device == "cuda":
            return get("cuda")
        return _REGISTRY["cpu"] if "cpu" in _REGISTRY else _REGISTRY["numpy"]
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


class NumpyBackend:
    """The pure-NumPy reference, image by image: slow, simple, the spec."""

    name = "numpy"
    device = "cpu"

    def forward(self, images, qualities, subsampling, num_threads):
        return [
            [np.stack(c) for c in zip(*(ref.encode_planes(img, subsampling, int(q)) for img, q in zip(images, row)))]
            for row in qualities
        ]

    def reconstruct(self, components, tables, height, width, subsampling, num_threads):
        for i, comp in enumerate(components):
            table = tables[:, min(i, 1)].astype(np.int64)[:, None, None]
            if (np.abs(comp.astype(np.int64)) * table > ref.MAX_DEQUANTIZED).any():
                raise ValueError(
                    "coefficients are outside the range a baseline JPEG encoder produces from 8-bit samples "
                    f"(|coefficient * table entry| <= {ref.MAX_DEQUANTIZED})"
                )
        out = [
            ref.decode_planes([c[i] for c in components], height, width, subsampling, tables[i].astype(np.int64))
            for i in range(components[0].shape[0])
        ]
        return np.stack(out)

    def roundtrip(self, images, qualities, subsampling, num_threads):
        return np.stack([np.stack([ref.roundtrip_image(img, int(q), subsampling) for img, q in zip(images, row)]) for row in qualities])


register(NumpyBackend())

with suppress(ImportError):
    from ._native import CpuBackend

    register(CpuBackend())

if "cpu" not in _REGISTRY:
    _MISSING["cpu"] = (
        "the 'cpu' backend needs helmholtz's compiled extension, which is not built; "
        "reinstall with a C compiler available: pip install --force-reinstall --no-binary helmholtz helmholtz"
    )


def _on_cuda(x) -> bool:
    """True for CuPy arrays and torch CUDA tensors."""
    module = type(x).__module__
    if module.startswith("cupy"):
        return True
    return module.startswith("torch") and getattr(getattr(x, "device", None), "type", None) == "cuda"
