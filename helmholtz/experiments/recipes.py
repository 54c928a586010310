"""Training recipes: the authors' protocol (``paper``) and a short modern one (``fast``).

Image trials use :data:`RECIPES`; audio trials use :data:`AUDIO_RECIPES` under
the same names. :meth:`Recipe.describe` is what a stored row keeps as its
``recipe_json`` fingerprint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Recipe", "AudioRecipe", "RECIPES", "AUDIO_RECIPES", "get_recipe", "get_audio_recipe"]


@dataclass(frozen=True)
class Recipe:
    """A training recipe.

    Attributes
    ----------
    name : str
    batch_size : int
    default_epochs : int
    shift : float
        Random shift as a fraction of the size (Keras' shift ranges).
    flip : bool
        Random horizontal flips.
    label_smoothing : float
    mixed_precision : bool
        bf16 autocast on CUDA.
    channels_last : bool
        Channels-last memory format on CUDA.
    make_optimizer : callable
        ``(model, steps_per_epoch, epochs) -> (optimizer, per-step scheduler or None)``.
    """

    name: str
    batch_size: int
    default_epochs: int
    make_optimizer: Callable[[Any, int, int], tuple[Any, Any]]
    shift: float = 0.1
    flip: bool = True
    label_smoothing: float = 0.0
    mixed_precision: bool = False
    channels_last: bool = False
    description: str = ""
    small_batch_size: int | None = None
    small_data: int = 10_000

    optimizer_text: str = ""

    def batch_for(self, train_images: int) -> int:
        """The batch size for a training set of ``train_images`` (smaller sets may take smaller batches)."""
        if self.small_batch_size is not None and train_images < self.small_data:
            return self.small_batch_size
        return self.batch_size

    def describe(self, train_images: int, epochs: int) -> dict[str, Any]:
        """Everything that defines training with this recipe, as JSON-able values."""
        return {
            "name": self.name,
            "kind": "image",
            "batch_size": self.batch_for(train_images),
            "epochs": epochs,
            "optimizer": self.optimizer_text,
            "shift": self.shift,
            "flip": self.flip,
            "label_smoothing": self.label_smoothing,
            "mixed_precision_on_gpu": "bfloat16" if self.mixed_precision else None,
            "channels_last_on_gpu": self.channels_last,
        }


@dataclass(frozen=True)
class AudioRecipe:
    """How an audio trial trains: the optimiser and the batch size.

    ``adadelta`` is the paper's (Keras 2 defaults: lr 1.0, rho 0.95,
    eps 1e-7); ``adam`` (lr 1e-3) gets there in fewer epochs.
    """

    name: str
    optimizer: str
    batch_size: int
    lr: float | None = None

    def make_optimizer(self, model: Any) -> Any:
        """The optimiser over ``model``'s parameters."""
        import torch

        if self.optimizer == "adadelta":
            return torch.optim.Adadelta(model.parameters(), lr=1.0 if self.lr is None else self.lr, rho=0.95, eps=1e-7)
        if self.optimizer == "adam":
            return torch.optim.Adam(model.parameters(), lr=1e-3 if self.lr is None else self.lr)
        raise ValueError(f"optimizer must be 'adadelta' or 'adam'; got {self.optimizer!r}")

    def describe(self, epochs: int) -> dict[str, Any]:
        """Everything that defines training with this recipe, as JSON-able values."""
        return {"name": self.name, "kind": "audio", "optimizer": self.optimizer, "lr": self.lr, "batch_size": self.batch_size, "epochs": epochs}


def _paper_optimizer(model, steps_per_epoch, epochs):
    """Keras 2.1.5 SGD(lr=0.01, decay=1e-6, momentum=0.9, nesterov=True): lr / (1 + decay * iterations)."""
    import torch

    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: 1.0 / (1.0 + 1e-6 * it))
    return opt, sched


def _fast_optimizer(model, steps_per_epoch, epochs):
    """One-cycle AdamW (peak lr 2e-3, decoupled weight decay 0.05 on weights, not biases).

    Adam-type updates suit these networks, which have no normalisation layers,
    better than high-lr SGD in a short schedule.
    """
    import torch

    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}], lr=2e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _one_cycle(max(1, steps_per_epoch * epochs)))
    return opt, sched


def _one_cycle(total: int, warmup: float = 0.25, start: float = 0.1, end: float = 0.01) -> Callable[[int], float]:
    """lr factor per step: linear warm-up from ``start`` to 1, then cosine down to ``end`` (any ``total`` >= 1)."""
    warm = max(1, int(round(warmup * total)))

    def factor(t: int) -> float:
        if t < warm:
            return start + (1 - start) * t / warm
        frac = min(1.0, (t - warm) / max(1, total - warm))
        return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * frac))

    return factor


RECIPES: dict[str, Recipe] = {
    "paper": Recipe(
        "paper",
        batch_size=128,
        default_epochs=200,
        make_optimizer=_paper_optimizer,
        optimizer_text="SGD(lr=0.01, momentum=0.9, nesterov=True), lr / (1 + 1e-6 * step)",
        description="the authors' protocol: SGD lr 0.01, Nesterov momentum 0.9, time decay 1e-6, batch 128, shifts 0.1 + flips, 200 epochs",
    ),
    "fast": Recipe(
        "fast",
        batch_size=128,
        default_epochs=30,
        make_optimizer=_fast_optimizer,
        optimizer_text="AdamW(peak lr 2e-3, weight decay 0.05 on weights), one cycle: 25% linear warm-up from 0.1, cosine to 0.01",
        label_smoothing=0.1,
        mixed_precision=True,
        channels_last=True,
        small_batch_size=64,
        description="one-cycle AdamW (peak lr 2e-3, wd 0.05), label smoothing 0.1, batch 128 (64 below 10,000 training images), "
        "shifts + flips, bf16 + channels-last on GPU, 30 epochs",
    ),
}


def get_recipe(name: Any) -> Recipe:
    """The recipe called ``name``, or a ValueError listing them."""
    if name not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}; got {name!r}")
    return RECIPES[name]


#: Audio recipes by the same names: the paper's Adadelta, and Adam for short runs (both batch 50, as the paper).
AUDIO_RECIPES: dict[str, AudioRecipe] = {
    "paper": AudioRecipe("paper", "adadelta", 50),
    "fast": AudioRecipe("fast", "adam", 50),
}


def get_audio_recipe(name: Any) -> AudioRecipe:
    """The audio recipe called ``name``, or a ValueError listing them."""
    if name not in AUDIO_RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(AUDIO_RECIPES)}; got {name!r}")
    return AUDIO_RECIPES[name]
