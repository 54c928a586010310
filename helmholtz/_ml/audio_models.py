"""The authors' six mel-spectrogram CNNs (reference.md section 3), in torch.

Every variant is::

    Conv32 3x3 valid -> BatchNorm -> ReLU
    k x [Conv32 3x3 valid -> ELU -> MaxPool 2 -> Dropout 0.5]
    Flatten -> [Dense w -> ELU -> Dropout 0.6] per hidden width -> Dense num_classes (softmax)

========================  ===  ========  ==========================
name                      k    dense     parameters (96x173, 12 cl.)
========================  ===  ========  ==========================
``conv3``                 3    --        101,412
``conv4-dense128``        4    128       170,436
``conv3-dense64-128``     3    64, 128   427,492
``conv3-dense128``        3    128       808,356
``conv3-dense128-128``    3    128, 128  824,868
``conv2-dense128``        2    128       3,715,460
========================  ===  ========  ==========================

The variants may also be named by position, 1-based in this order: ``1``..``6``,
``"1"``..``"6"``, ``"audio1"``..``"audio6"`` or the letters ``"A"``..``"F"``.

Keras arithmetic behind the counts
----------------------------------
A valid 3x3 conv shrinks each side by 2; a 2x2 max-pool halves it, rounding
down. On 96x173: 94x171 -> [92x169 -> 46x84] -> [44x82 -> 22x41] ->
[20x39 -> 10x19] -> [8x17 -> 4x8]. Convs cost ``9*cin*32 + 32`` (320, then
9,248 each); a dense layer ``fan_in*w + w``; flattening 10x19x32 gives 6,080
inputs, 22x41x32 gives 28,864, 4x8x32 gives 1,024.

The BatchNorm is the only subtle term: the counts need 376 = 4 x 94 BatchNorm
parameters, so the authors' ``BatchNormalization`` normalised **axis 1 of the
channels-last tensor, i.e. the 94 rows (mel bands) of the first conv's
output**, not the 32 channels (which would be 128). This module keeps that
behaviour (statistics per row, shared over channels, time and batch), and
Keras counts gamma, beta and the moving mean and variance: use
:func:`keras_parameter_count` to get the authors' totals.
:func:`helmholtz.models.count_parameters` counts only trainable tensors and
gives 188 fewer.

Initialisation follows Keras 2: Glorot-uniform weights, zero biases; BatchNorm
momentum 0.99 (torch ``momentum=0.01``) and epsilon 1e-3.
"""

from __future__ import annotations

from typing import Any

from .._extras import require

__all__ = ["AUDIO_MODELS", "audio_model", "audio_model_names", "keras_parameter_count", "resolve_audio_model"]

#: canonical name -> (number of conv/pool blocks, hidden dense widths)
AUDIO_MODELS: dict[str, tuple[int, tuple[int, ...]]] = {
    "conv3": (3, ()),
    "conv4-dense128": (4, (128,)),
    "conv3-dense64-128": (3, (64, 128)),
    "conv3-dense128": (3, (128,)),
    "conv3-dense128-128": (3, (128, 128)),
    "conv2-dense128": (2, (128,)),
}

_ORDER = list(AUDIO_MODELS)


def audio_model_names() -> list[str]:
    """The canonical variant names, in the authors' order."""
    return list(_ORDER)


def resolve_audio_model(name: Any) -> str:
    """Map a name, a 1-based position or a letter A-F to the canonical variant name.

    Raises
    ------
    TypeError
        If ``name`` is neither a string nor an integer.
    ValueError
        If it names no variant; the message lists them.
    """
    if isinstance(name, bool) or not isinstance(name, (str, int)):
        raise TypeError(f"name must be a model name string or a 1-based index; got {type(name).__name__}")
    key = str(name).strip().lower()
    if key in AUDIO_MODELS:
        return key
    if key.startswith("audio"):
        key = key[5:].lstrip("-_")
    if len(key) == 1 and "a" <= key <= "f":
        return _ORDER[ord(key) - ord("a")]
    if key.isdigit() and 1 <= int(key) <= len(_ORDER):
        return _ORDER[int(key) - 1]
    raise ValueError(f"name must be one of {', '.join(_ORDER)} (or 1-6, A-F); got {name!r}")


def _shape(input_shape: Any) -> tuple[int, int]:
    if not isinstance(input_shape, (tuple, list)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in input_shape):
        raise TypeError(f"input_shape must be a tuple of ints (n_mels, frames) or (1, n_mels, frames); got {input_shape!r}")
    shape = tuple(input_shape)
    if len(shape) == 3 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) != 2:
        raise ValueError(f"input_shape must be (n_mels, frames) or (1, n_mels, frames); got {tuple(input_shape)}")
    return shape  # type: ignore[return-value]


def _blocks_out(h: int, w: int, k: int) -> tuple[int, int]:
    h, w = h - 2, w - 2
    for _ in range(k):
        h, w = (h - 2) // 2, (w - 2) // 2
    return h, w


def audio_model(name: Any, input_shape: tuple, num_classes: int) -> Any:
    """Build one of the authors' audio CNNs as a ``torch.nn.Module``.

    Parameters
    ----------
    name : str or int
        A variant (see :data:`AUDIO_MODELS`), a 1-based index or a letter A-F.
    input_shape : tuple of int
        ``(n_mels, frames)`` or ``(1, n_mels, frames)``; the model takes
        ``(N, 1, n_mels, frames)`` or ``(N, n_mels, frames)`` float tensors.
    num_classes : int
        Outputs (logits; apply softmax / cross-entropy outside).

    Returns
    -------
    torch.nn.Module

    Raises
    ------
    ValueError
        Unknown name, or an input too small for the variant's blocks.

    Examples
    --------
    >>> m = audio_model("conv3", (96, 173), 12)
    >>> keras_parameter_count(m)
    101412
    """
    torch = require("torch", purpose="helmholtz.models.audio_model")
    from torch import nn

    key = resolve_audio_model(name)
    k, widths = AUDIO_MODELS[key]
    h, w = _shape(input_shape)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise TypeError(f"num_classes must be a positive int; got {type(num_classes).__name__} {num_classes!r}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be a positive int; got {num_classes!r}")
    oh, ow = _blocks_out(h, w, k)
    if oh < 1 or ow < 1:
        raise ValueError(f"input_shape {tuple(input_shape)} is too small for {key}: its {k} conv/pool blocks leave a {oh}x{ow} map")

    class RowBatchNorm(nn.Module):
        """Keras ``BatchNormalization(axis=1)`` on a channels-last tensor: one statistic per row."""

        def __init__(self, rows: int):
            super().__init__()
            self.bn = nn.BatchNorm2d(rows, eps=1e-3, momentum=0.01)

        def forward(self, x):  # noqa: D102
            return self.bn(x.transpose(1, 2)).transpose(1, 2)

    class AudioCNN(nn.Module):
        """Mel-spectrogram CNN (Friedland et al.); ``forward`` returns logits."""

        def __init__(self):
            super().__init__()
            layers: list[nn.Module] = [nn.Conv2d(1, 32, 3), RowBatchNorm(h - 2), nn.ReLU()]
            for _ in range(k):
                layers += [nn.Conv2d(32, 32, 3), nn.ELU(), nn.MaxPool2d(2), nn.Dropout(0.5)]
            self.features = nn.Sequential(*layers)
            head: list[nn.Module] = [nn.Flatten()]
            fan_in = 32 * oh * ow
            for width in widths:
                head += [nn.Linear(fan_in, width), nn.ELU(), nn.Dropout(0.6)]
                fan_in = width
            head.append(nn.Linear(fan_in, num_classes))
            self.classifier = nn.Sequential(*head)
            self.name = key
            self.input_shape = (1, h, w)

        def forward(self, x):  # noqa: D102
            if x.ndim == 3:
                x = x.unsqueeze(1)
            return self.classifier(self.features(x))

    model = AudioCNN()
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    del torch
    return model


def keras_parameter_count(model: Any) -> int:
    """Parameters as Keras' "Total params" counts them: all parameters plus BatchNorm moving statistics."""
    if not hasattr(model, "parameters") or not hasattr(model, "modules"):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    from torch import nn

    total = sum(p.numel() for p in model.parameters())
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)) and m.track_running_stats:
            total += m.running_mean.numel() + m.running_var.numel()
    return int(total)
