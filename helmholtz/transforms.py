"""The torch layer: an exact JPEG transform, the codec as torch ops, and a device-resident training set.

:class:`JPEG` compresses images exactly as Pillow would, following
torchvision v2's conventions: PIL images, NumPy arrays, tensors and
``tv_tensors`` in, the same kind out; samples (tuples, dicts, nested) have
their images compressed and their labels, masks and boxes passed through; a
fixed, ranged or listed quality, a probability ``p``, reproducible draws that
differ in each DataLoader worker; for float tensors that require grad, the
exact pixels forward and a straight-through (or ``grad="smooth"``) gradient
backward. :class:`JPEGCollate` compresses a whole batch in one codec call in
the DataLoader worker; :func:`jpeg_tensor` is the transform as a function and
:func:`jpeg_surrogate` the differentiable model behind ``grad="smooth"``.

:func:`register_ops` defines the codec as ``torch.ops.helmholtz.*`` custom
ops (``roundtrip``, ``roundtrip_many``, ``roundtrip_float``, ``coefficients``,
``reconstruct``, ``bits`` and the transform's ``jpeg``), with fake kernels,
so that ``torch.compile(fullgraph=True)`` and ``torch.export`` trace code that
calls them.

:class:`DeviceDataset` keeps a whole (compressed) training set on the
training device as uint8 and slices augmented batches from it there;
:func:`compress_many` compresses a split at several qualities at once.

``torch`` is imported when these are used, not on ``import helmholtz``.
"""

from __future__ import annotations

from typing import Any

from ._ml import transforms as _transforms
from ._ml.device_data import DeviceDataset, compress_many, to_float_nchw
from ._ml.ops import register as register_ops
from ._ml.surrogate import jpeg_surrogate
from ._ml.transforms import GRAD_MODES, JPEGCollate, jpeg_tensor

__all__ = [
    "JPEG",
    "JPEGCollate",
    "GRAD_MODES",
    "jpeg_tensor",
    "jpeg_surrogate",
    "register_ops",
    "compress_many",
    "DeviceDataset",
    "to_float_nchw",
]


def __getattr__(name: str) -> Any:
    # JPEG subclasses torch.nn.Module, so it is built (importing torch) on first access
    if name == "JPEG":
        return _transforms.JPEG
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
