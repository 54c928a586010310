"""Training data resident on the device: compression of whole splits and a batched, augmented set.

:func:`compress_many` compresses a uint8 NHWC split at several qualities with
one forward transform on the training device. :class:`DeviceDataset` keeps a
whole (compressed) training set on the device as uint8 and slices batches
from it, doing the paper's augmentation (random shifts of a fraction of the
size, nearest fill, and horizontal flips, as Keras' ``ImageDataGenerator``)
on the device.
"""

from __future__ import annotations

import warnings
from typing import Any, Iterator, Sequence

import numpy as np

from .. import jpeg
from ..errors import BackendUnavailable

__all__ = ["compress_many", "DeviceDataset", "to_float_nchw", "torch_device"]


def torch_device(device: Any, name: str = "device") -> Any:
    """``device`` as a ``torch.device``, refused here when it cannot run.

    torch itself only fails later, with an ``AssertionError`` ("Torch not
    compiled with CUDA enabled") or a device-side error, when a tensor first
    moves; this names the argument instead.

    Raises
    ------
    TypeError
        If ``device`` is not a string, ``torch.device`` or int (a CUDA index).
    ValueError
        If it is not a device name torch knows (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...).
    BackendUnavailable
        If it is a CUDA device and CUDA is unavailable here (no GPU, or a
        CPU-only torch build), or its index is beyond the GPUs present.
    """
    import torch

    if isinstance(device, bool) or not isinstance(device, (str, torch.device, int)):  # an int is a CUDA index, as torch reads it
        raise TypeError(f"{name} must be a device name such as 'cpu' or 'cuda', a torch.device or a CUDA index; got {device!r}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"{name}={device!r} is not a torch device name (e.g. 'cpu', 'cuda', 'cuda:1'): {exc}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BackendUnavailable(
                f"{name}={device!r} needs CUDA, which is unavailable here (torch.cuda.is_available() is False: "
                "no GPU, or a CPU-only torch build); use device='cpu'"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise BackendUnavailable(f"{name}={device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev


def compress_many(images: Any, qualities: Sequence[int], *, device: str = "cpu", subsampling: str = "4:2:0",
                  fallback: bool = True) -> Any:
    """Compress a uint8 NHWC batch at several qualities with one forward transform, on ``device``.

    Parameters
    ----------
    images : ndarray or torch.Tensor
        uint8 ``(N, H, W, C)``.
    qualities : sequence of int
        Qualities 1..100.
    device : str
        ``"cpu"`` or a CUDA device; for CUDA the codec runs there.
    fallback : bool
        What happens when ``device`` is CUDA but helmholtz's cuda JPEG backend
        cannot run (CuPy missing, say): True compresses on the host instead
        (the same integers, slower) with a ``RuntimeWarning`` that says why;
        False raises :class:`~helmholtz.errors.BackendUnavailable`.

    Returns
    -------
    torch.Tensor
        uint8 ``(Q, N, H, W, C)`` on ``device``.
    """
    import torch

    x = torch.as_tensor(images)
    if x.dtype != torch.uint8 or x.ndim != 4:
        raise TypeError(f"images must be uint8 (N, H, W, C); got {x.dtype} {tuple(x.shape)}")
    if not isinstance(fallback, bool):
        raise TypeError(f"fallback must be True or False; got {fallback!r}")
    qs = [int(q) for q in qualities]
    dev = torch_device(device)
    if dev.type == "cuda":
        x = x.to(dev)
        try:
            return jpeg.roundtrip_many(x, qs, subsampling=subsampling, backend="cuda")
        except BackendUnavailable as exc:
            if not fallback:
                raise BackendUnavailable(f"compress_many(device={device!r}, fallback=False): {exc}") from None
            warnings.warn(f"helmholtz: compress_many(device={device!r}) is compressing on the host, not on the GPU: the cuda "
                          f"JPEG backend is unavailable ({exc}); pass fallback=False to make this an error",
                          RuntimeWarning, stacklevel=2)
            return jpeg.roundtrip_many(x.cpu(), qs, subsampling=subsampling).to(dev)
    return jpeg.roundtrip_many(x.cpu().contiguous(), qs, subsampling=subsampling)


def to_float_nchw(x: Any, channels_last: bool = False) -> Any:
    """uint8 NHWC -> float32 NCHW in [0, 1] (optionally in channels-last memory)."""
    import torch

    out = x.permute(0, 3, 1, 2).float().div_(255)
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out.contiguous()


class DeviceDataset:
    """A labelled image set resident on one device, batched with on-device augmentation.

    Iterating yields ``(x, y)``: float32 ``(B, C, H, W)`` in ``[0, 1]`` and int64 ``(B,)``.

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

    Raises
    ------
    TypeError, ValueError
        For bad images, labels, batch size, shift or device name.
    BackendUnavailable
        For a CUDA ``device`` where CUDA is unavailable (see :func:`torch_device`).
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
        self.device = torch_device(device)
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
