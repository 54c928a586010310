"""The torch layer: a JPEG transform and a device-resident training set.

:class:`JPEG` compresses tensors with :mod:`helmholtz.jpeg`, exactly as
Pillow would, at a fixed quality or at a random quality per sample. It takes
channels-first ``(C, H, W)`` or ``(N, C, H, W)`` tensors, uint8 or float in
``[0, 1]``, on the CPU or a CUDA device, and returns the same kind. It is a
``torch.nn.Module``, so it works in ``torchvision.transforms.v2.Compose``
pipelines as well as on whole batches. CUDA tensors go to the codec's
``cuda`` backend without leaving the device; where that backend is missing
the transform falls back to the host (with a warning) or raises
:class:`helmholtz.BackendUnavailable` (``cuda_fallback=False``).

:class:`DeviceDataset` keeps a whole (compressed) training set on the
training device as uint8 and slices batches from it, doing the paper's
augmentation (random shifts of a fraction of the size, nearest fill, and
horizontal flips, as Keras' ``ImageDataGenerator``) on the device.

``torch`` is imported when these are used, not on ``import helmholtz``.
"""

from __future__ import annotations

import operator
import warnings
from typing import Any, Iterator, Sequence

import numpy as np

from . import jpeg
from .backends import BackendUnavailable

__all__ = ["JPEG", "jpeg_tensor", "compress_many", "DeviceDataset", "to_float_nchw"]

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
            from ._arrays import check_subsampling

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


def compress_many(images: Any, qualities: Sequence[int], *, device: str = "cpu", subsampling: str = "4:2:0") -> Any:
    """Compress a uint8 NHWC batch at several qualities with one forward transform, on ``device``.

    Parameters
    ----------
    images : ndarray or torch.Tensor
        uint8 ``(N, H, W, C)``.
    qualities : sequence of int
        Qualities 1..100.
    device : str
        ``"cpu"`` or a CUDA device; for CUDA the codec runs there (falling
        back to the host with a warning when the cuda backend is missing).

    Returns
    -------
    torch.Tensor
        uint8 ``(Q, N, H, W, C)`` on ``device``.
    """
    import torch

    x = torch.as_tensor(images)
    if x.dtype != torch.uint8 or x.ndim != 4:
        raise TypeError(f"images must be uint8 (N, H, W, C); got {x.dtype} {tuple(x.shape)}")
    qs = [int(q) for q in qualities]
    dev = torch.device(device)
    if dev.type == "cuda":
        x = x.to(dev)
        try:
            return jpeg.roundtrip_many(x, qs, subsampling=subsampling, backend="cuda")
        except BackendUnavailable:
            warnings.warn("helmholtz: the cuda JPEG backend is unavailable; compressing on the host", RuntimeWarning, stacklevel=2)
            return jpeg.roundtrip_many(x.cpu(), qs, subsampling=subsampling).to(dev)
    return jpeg.roundtrip_many(x.cpu().contiguous(), qs, subsampling=subsampling)


def to_float_nchw(x: Any, channels_last: bool = False) -> Any:
    """uint8 NHWC -> float32 NCHW in [0, 1] (optionally in channels-last memory)."""
    import torch

    out = x.permute(0, 3, 1, 2).float().div_(255)
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out.contiguous()


class DeviceDataset:
    """A labelled image set resident on one device, batched with on-device augmentation.

    Parameters
    ----------
    images : ndarray or torch.Tensor
        uint8 ``(N, H, W, C)``; copied to ``device`` once.
    labels : array_like
        ``(N,)`` integer labels.
    batch_size : int
        Images per batch.
    device : str or torch.device
        Where the data and the batches live.
    shuffle : bool
        Draw a new permutation each epoch.
    shift : float
        Maximum random shift as a fraction of height and width (Keras'
        ``width_shift_range``/``height_shift_range``): each image is moved by
        ``round(U(-shift, shift) * size)`` pixels, edges replicated
        (``fill_mode="nearest"``). 0 turns it off.
    flip : bool
        Random horizontal flips with probability 1/2.
    channels_last : bool
        Return batches in channels-last memory format.
    seed : int, optional
        Seed of the device generator for shuffling and augmentation.

    Iterating yields ``(x, y)``: float32 ``(B, C, H, W)`` in ``[0, 1]`` and int64 ``(B,)``.
    """

    def __init__(
        self,
        images: Any,
        labels: Any,
        batch_size: int = 128,
        *,
        device: Any = "cpu",
        shuffle: bool = True,
        shift: float = 0.0,
        flip: bool = False,
        channels_last: bool = False,
        seed: int | None = None,
        drop_last: bool = False,
    ) -> None:
        import torch

        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1; got {batch_size!r}")
        if not 0 <= float(shift) < 1:
            raise ValueError(f"shift must be in [0, 1); got {shift!r}")
        self.device = torch.device(device)
        x = torch.as_tensor(images)
        if x.dtype != torch.uint8 or x.ndim != 4:
            raise TypeError(f"images must be uint8 (N, H, W, C); got {x.dtype} {tuple(x.shape)}")
        y = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels).long()
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise ValueError(f"labels must have shape ({x.shape[0]},); got {tuple(y.shape)}")
        self.images = x.to(self.device).contiguous()
        self.labels = y.to(self.device)
        self.batch_size = batch_size
        self.shuffle, self.shift, self.flip = bool(shuffle), float(shift), bool(flip)
        self.channels_last = bool(channels_last)
        self.drop_last = bool(drop_last)
        self.generator = torch.Generator(device=self.device)
        if seed is not None:
            self.generator.manual_seed(int(seed))

    def __len__(self) -> int:
        n = self.images.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_images(self) -> int:
        return int(self.images.shape[0])

    def augment(self, index: Any) -> Any:
        """The augmented uint8 NHWC images at ``index`` (a 1-D index tensor on the device)."""
        import torch

        n, h, w, _ = self.images.shape
        b = index.shape[0]
        dev, gen = self.device, self.generator
        rows = torch.arange(h, device=dev).expand(b, h)
        cols = torch.arange(w, device=dev).expand(b, w)
        if self.flip:
            flip = torch.rand(b, device=dev, generator=gen) < 0.5
            cols = torch.where(flip[:, None], w - 1 - cols, cols)
        if self.shift > 0:
            dy = torch.round((torch.rand(b, device=dev, generator=gen) * 2 - 1) * self.shift * h).long()
            dx = torch.round((torch.rand(b, device=dev, generator=gen) * 2 - 1) * self.shift * w).long()
            rows = (rows + dy[:, None]).clamp_(0, h - 1)
            cols = (cols + dx[:, None]).clamp_(0, w - 1)
        if not (self.flip or self.shift > 0):
            return self.images[index]
        return self.images[index[:, None, None], rows[:, :, None], cols[:, None, :]]

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        import torch

        n = self.num_images
        order = torch.randperm(n, device=self.device, generator=self.generator) if self.shuffle else torch.arange(n, device=self.device)
        stop = len(self) * self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            idx = order[start : start + self.batch_size]
            yield to_float_nchw(self.augment(idx), self.channels_last), self.labels[idx]
