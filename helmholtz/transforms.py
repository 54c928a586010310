"""The torch layer: a JPEG transform and a device-resident training set.

:class:`JPEG` compresses tensors with :mod:`helmholtz.jpeg`, exactly as
Pillow would, at a fixed quality or at a random quality per sample, on the CPU
or a CUDA device. :func:`jpeg_tensor` is the same as a function.

:class:`DeviceDataset` keeps a whole (compressed) training set on the
training device as uint8 and slices augmented batches from it there;
:func:`compress_many` compresses a split at several qualities at once.

``torch`` is imported when these are used, not on ``import helmholtz``.
"""

from __future__ import annotations

from typing import Any

from ._ml import transforms as _transforms
from ._ml.device_data import DeviceDataset, compress_many, to_float_nchw
from ._ml.transforms import jpeg_tensor

__all__ = ["JPEG", "jpeg_tensor", "compress_many", "DeviceDataset", "to_float_nchw"]


def __getattr__(name: str) -> Any:
    # JPEG subclasses torch.nn.Module, so it is built (importing torch) on first access
    if name == "JPEG":
        return _transforms.JPEG
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
