"""The CIFAR-10 architectures of the Helmholtz-method papers, in PyTorch.

Six networks, ``"A"`` to ``"F"``, share a convolutional stem and differ in
their heads (Friedland et al., arXiv 1807.10569; the authors' Keras code).
With the default 32x32 RGB input and 10 classes their parameter counts are
exactly the authors' (see :data:`PARAMETER_COUNTS`).

Fidelity to the Keras originals:

* convolutions use TensorFlow's ``padding="same"`` rule, which pads
  asymmetrically (bottom/right) for stride-2 layers on even inputs;
* weights are initialised with ``glorot_uniform`` and biases with zeros,
  Keras' defaults;
* dense heads flatten in Keras' channels-last order.

The models return logits; the softmax lives in the loss.

``torch`` is imported only when a model is built.
"""

from __future__ import annotations

import math
from typing import Any

from .._extras import require

__all__ = [
    "MODEL_NAMES",
    "MODEL_ALIASES",
    "PARAMETER_COUNTS",
    "cifar_model",
    "count_parameters",
    "check_model_name",
]

MODEL_NAMES: tuple[str, ...] = ("A", "B", "C", "D", "E", "F")

#: The authors' names for the architectures.
MODEL_ALIASES: dict[str, str] = {
    "A": "all-cnns",
    "B": "cnns-dense-64",
    "C": "all-cnnsx2",
    "D": "cnns-x2-dense-128",
    "E": "cnns-dense-128",
    "F": "cnns-dense-128-256",
}

#: Parameter counts of the authors' Keras models (32x32x3 input, 10 classes).
PARAMETER_COUNTS: dict[str, int] = {
    "A": 701_386,
    "B": 1_079_562,
    "C": 1_144_138,
    "D": 1_276_618,
    "E": 1_620_298,
    "F": 1_686_090,
}


def check_model_name(name: Any) -> str:
    """The canonical name (``"A"`` to ``"F"``) of a CIFAR model name or alias, or a ValueError listing them."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a model name string such as 'A'; got {type(name).__name__}")
    key = name.strip().upper()
    if key not in MODEL_NAMES:
        aliases = {v: k for k, v in MODEL_ALIASES.items()}
        if name.strip().lower() in aliases:
            return aliases[name.strip().lower()]
        raise ValueError(f"name must be one of {', '.join(MODEL_NAMES)} (or an alias {sorted(aliases)}); got {name!r}")
    return key


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int; got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1; got {value}")
    return value


def _modules():
    """Build the torch module classes on first use (keeps ``import helmholtz.models`` light)."""
    torch = require("torch", purpose="helmholtz.models")
    from torch import nn
    from torch.nn import functional as F

    class SameConv2d(nn.Conv2d):
        """``nn.Conv2d`` with TensorFlow/Keras ``padding="same"``: output = ceil(input / stride)."""

        def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
            super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0)

        def forward(self, x):  # noqa: D102
            k, s = self.kernel_size[0], self.stride[0]
            h, w = x.shape[-2:]
            pad_h = max((math.ceil(h / s) - 1) * s + k - h, 0)
            pad_w = max((math.ceil(w / s) - 1) * s + k - w, 0)
            if pad_h or pad_w:
                x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
            return super().forward(x)

    class KerasFlatten(nn.Module):
        """Flatten (N, C, H, W) in channels-last order, as Keras' ``Flatten`` does."""

        def forward(self, x):  # noqa: D102
            return torch.flatten(x.permute(0, 2, 3, 1), 1)

    class GlobalAvgPool(nn.Module):
        def forward(self, x):  # noqa: D102
            return x.mean(dim=(2, 3))

    return SameConv2d, KerasFlatten, GlobalAvgPool, nn


def _conv_out(size: int, strides: int) -> int:
    for _ in range(strides):
        size = math.ceil(size / 2)
    return size


def cifar_model(name: str, *, in_channels: int = 3, num_classes: int = 10, image_size: int | tuple[int, int] = 32) -> Any:
    """Build one of the authors' CIFAR-10 networks.

    Parameters
    ----------
    name : str
        ``"A"`` .. ``"F"`` (case-insensitive) or the authors' alias, e.g.
        ``"all-cnns"`` for A.
    in_channels : int, optional
        Input channels (3 for RGB, 1 for MNIST).
    num_classes : int, optional
        Number of output logits.
    image_size : int or (int, int), optional
        Input height and width; the dense heads (B, D, E, F) depend on it.

    Returns
    -------
    torch.nn.Module
        Maps float ``(N, in_channels, H, W)`` to logits ``(N, num_classes)``.
        With the defaults its parameter count equals ``PARAMETER_COUNTS[name]``.

    Raises
    ------
    TypeError, ValueError
        For a name that is not a model, or a bad size or count.

    Examples
    --------
    >>> from helmholtz.models import cifar_model, count_parameters
    >>> count_parameters(cifar_model("A"))
    701386
    """
    key = check_model_name(name)
    in_channels = _positive_int(in_channels, "in_channels")
    num_classes = _positive_int(num_classes, "num_classes")
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        size = (image_size, image_size)
    elif isinstance(image_size, (tuple, list)) and len(image_size) == 2:
        size = tuple(image_size)
    else:
        raise TypeError(f"image_size must be an int or a (height, width) pair; got {image_size!r}")
    size = (_positive_int(size[0], "image_size"), _positive_int(size[1], "image_size"))

    Conv, Flatten, GAP, nn = _modules()

    def conv(cin, cout, k, stride=1, relu=True):
        layers = [Conv(cin, cout, k, stride)]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        return layers

    # shared stem -> (128, H/4, W/4)
    layers: list = []
    layers += conv(in_channels, 32, 3) + conv(32, 64, 3)
    layers += conv(64, 128, 3, 2, relu=False) + [nn.Dropout(0.5)]
    layers += conv(128, 128, 3) + conv(128, 128, 3)
    layers += conv(128, 128, 3, 2, relu=False) + [nn.Dropout(0.5)]
    strides = 2

    def extra_block():
        return conv(128, 128, 3) + conv(128, 128, 3) + conv(128, 128, 3, 2, relu=False) + [nn.Dropout(0.5)]

    def dense_head(widths, dropout_after_each: bool):
        h, w = (_conv_out(s, strides) for s in size)
        head: list = [Flatten()]
        cin = 128 * h * w
        for width in widths:
            head += [nn.Linear(cin, width), nn.ReLU(inplace=True)]
            if dropout_after_each:
                head.append(nn.Dropout(0.5))
            cin = width
        head.append(nn.Linear(cin, num_classes))
        return head

    def gap_head():
        return conv(128, 128, 3) + conv(128, 128, 1) + conv(128, num_classes, 1, relu=False) + [GAP()]

    if key == "A":
        layers += gap_head()
    elif key == "B":
        layers += dense_head((64, 256), True)
    elif key == "C":
        layers += extra_block()
        strides += 1
        layers += gap_head()
    elif key == "D":
        layers += extra_block()
        strides += 1
        layers += dense_head((128, 256), True)
    elif key == "E":
        layers += dense_head((128, 256), True)
    else:  # F
        layers += dense_head((128, 256, 256), True)

    model = nn.Sequential(*layers)
    _keras_init(model)
    model.helmholtz_name = key  # type: ignore[attr-defined]
    return model


def _keras_init(model: Any) -> None:
    """glorot_uniform weights and zero biases for every conv and dense layer (Keras defaults)."""
    from torch import nn

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def count_parameters(model: Any) -> int:
    """Number of trainable parameters of a torch module (Keras' "Trainable params")."""
    if not hasattr(model, "parameters"):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
