"""The JPEG transform for torch pipelines (public face: :mod:`helmholtz.transforms`).

:class:`JPEG` compresses tensors with :mod:`helmholtz.jpeg`, exactly as
Pillow would, at a fixed quality or at a random quality per sample. It takes
channels-first ``(C, H, W)`` or ``(N, C, H, W)`` tensors, uint8 or float in
``[0, 1]``, on the CPU or a CUDA device, and returns the same kind. It is a
``torch.nn.Module``, so it works in ``torchvision.transforms.v2.Compose``
pipelines as well as on whole batches. CUDA tensors go to the codec's
``cuda`` backend without leaving the device; where that backend is missing
the transform falls back to the host (with a warning) or raises
:class:`helmholtz.BackendUnavailable` (``cuda_fallback=False``).

``torch`` is imported when these are used, not on ``import helmholtz``.
"""

from __future__ import annotations

import operator
import warnings
from typing import Any, Sequence

import numpy as np

from .. import jpeg
from .._codec.arrays import check_subsampling
from ..errors import BackendUnavailable

__all__ = ["JPEG", "jpeg_tensor"]

_warned_fallback = False


def _check_quality(quality: Any) -> tuple[int, int]:
    """An int or a (low, high) pair in 1..100 -> (low, high)."""
    if isinstance(quality, (bool, np.bool_)):
        raise TypeError("quality must be an int in 1..100 or a (low, high) pair; got a bool")
    if isinstance(quality, (tuple, list)):
        if len(quality) != 2:
            raise ValueError(f"quality range must be a (low, high) pair; got {quality!r}")
        try:
            lo, hi = operator.index(quality[0]), operator.index(quality[1])
        except TypeError:
            raise TypeError(f"quality range must hold ints; got {quality!r}") from None
    else:
        try:
            lo = hi = operator.index(quality)
        except TypeError:
            raise TypeError(f"quality must be an int in 1..100 or a (low, high) pair; got {quality!r}") from None
    if not (1 <= lo <= hi <= 100):
        raise ValueError(f"quality must satisfy 1 <= low <= high <= 100; got {quality!r}")
    return lo, hi


def _roundtrip_nhwc(x: Any, quality: Any, subsampling: str, backend: str, cuda_fallback: bool) -> Any:
    """uint8 NHWC tensor -> uint8 NHWC tensor on the same device."""
    global _warned_fallback
    if x.device.type == "cuda":
        try:
            return jpeg.roundtrip(x, quality, subsampling=subsampling, backend="cuda" if backend == "auto" else backend)
        except BackendUnavailable:
            if not cuda_fallback:
                raise
            if not _warned_fallback:
                warnings.warn("helmholtz: the cuda JPEG backend is unavailable; compressing on the host", RuntimeWarning, stacklevel=3)
                _warned_fallback = True
            return jpeg.roundtrip(x.cpu(), quality, subsampling=subsampling).to(x.device)
    return jpeg.roundtrip(x, quality, subsampling=subsampling, backend=backend)


def jpeg_tensor(
    x: Any,
    quality: int | Sequence[int] | Any,
    *,
    subsampling: str = "4:2:0",
    backend: str = "auto",
    cuda_fallback: bool = True,
) -> Any:
    """JPEG round trip of a channels-first tensor or batch.

    Parameters
    ----------
    x : torch.Tensor
        ``(C, H, W)`` or ``(N, C, H, W)``, C in (1, 3); uint8, or floating
        point in ``[0, 1]`` (rounded to 8 bits first, as saving would).
    quality : int, sequence of int or tensor
        One quality for all images or one per image, each 1..100.
    subsampling, backend
        As for :func:`helmholtz.jpeg.roundtrip`.
    cuda_fallback : bool
        For CUDA tensors without the cuda backend: compress on the host
        (True) or raise :class:`helmholtz.BackendUnavailable` (False).

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as ``x``.
    """
    import torch

    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor; got {type(x).__name__}")
    if x.ndim not in (3, 4) or x.shape[-3] not in (1, 3):
        raise ValueError(f"x must have shape (C, H, W) or (N, C, H, W) with C in (1, 3); got {tuple(x.shape)}")
    single = x.ndim == 3
    batch = x.unsqueeze(0) if single else x
    if isinstance(quality, torch.Tensor):
        quality = quality.detach().cpu().numpy()
    if batch.dtype == torch.uint8:
        u8 = batch
    elif batch.is_floating_point():
        u8 = (batch.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    else:
        raise TypeError(f"x must be uint8 or floating point; got {x.dtype}")
    nhwc = u8.permute(0, 2, 3, 1).contiguous()
    out = _roundtrip_nhwc(nhwc, quality, subsampling, backend, cuda_fallback).permute(0, 3, 1, 2)
    if batch.dtype != torch.uint8:
        out = out.to(batch.dtype) / 255
    out = out.contiguous()
    return out[0] if single else out


def _build_jpeg_class() -> type:
    """Create :class:`JPEG` as a ``torch.nn.Module`` subclass on first use."""
    import torch

    class JPEG(torch.nn.Module):
        """A JPEG-compression transform for tensors and batches (torchvision v2 style).

        Parameters
        ----------
        quality : int or (int, int)
            A fixed quality 1..100, or an inclusive range from which each sample
            draws its own quality uniformly.
        subsampling : {"4:2:0", "4:2:2", "4:4:4"}
            Chroma subsampling (Pillow's default is 4:2:0).
        backend : str
            Codec backend, ``"auto"`` by default (``cuda`` for CUDA tensors).
        cuda_fallback : bool
            See :func:`jpeg_tensor`.
        generator : torch.Generator, optional
            Source of the random qualities (a CPU generator).

        Examples
        --------
        >>> import torch
        >>> from helmholtz.transforms import JPEG
        >>> t = JPEG(quality=(5, 50))
        >>> t(torch.zeros(4, 3, 32, 32, dtype=torch.uint8)).shape
        torch.Size([4, 3, 32, 32])
        """

        def __init__(
            self,
            quality: int | tuple[int, int],
            *,
            subsampling: str = "4:2:0",
            backend: str = "auto",
            cuda_fallback: bool = True,
            generator: Any = None,
        ) -> None:
            super().__init__()
            self.low, self.high = _check_quality(quality)
            self.subsampling = check_subsampling(subsampling)
            if not isinstance(backend, str):
                raise TypeError(f"backend must be a string; got {type(backend).__name__}")
            self.backend = backend
            self.cuda_fallback = bool(cuda_fallback)
            self.generator = generator

        def qualities(self, n: int) -> Any:
            """Draw the qualities for ``n`` samples (an int when the quality is fixed)."""
            if self.low == self.high:
                return self.low
            return torch.randint(self.low, self.high + 1, (n,), generator=self.generator).numpy().astype(np.int32)

        def forward(self, x: Any) -> Any:
            """Compress ``x`` (see :func:`jpeg_tensor`); non-tensors pass through unchanged."""
            if not isinstance(x, torch.Tensor):
                return x
            n = 1 if x.ndim == 3 else x.shape[0]
            return jpeg_tensor(x, self.qualities(n), subsampling=self.subsampling, backend=self.backend, cuda_fallback=self.cuda_fallback)

        def extra_repr(self) -> str:
            q = self.low if self.low == self.high else (self.low, self.high)
            return f"quality={q}, subsampling={self.subsampling!r}"

    JPEG.__module__ = __name__
    JPEG.__qualname__ = "JPEG"
    return JPEG


def __getattr__(name: str) -> Any:
    # ``JPEG`` subclasses torch.nn.Module, so it is built (importing torch) on first access
    if name == "JPEG":
        cls = _build_jpeg_class()
        globals()["JPEG"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
