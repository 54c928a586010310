"""The one trainer of helmholtz: image and audio trials alike.

:func:`fit` trains a classifier for a number of epochs and evaluates it on
the test set after every epoch, as the authors did. It is written so that a
GPU never waits for the host inside an epoch:

* the training loss and the number of correct test predictions accumulate
  in device tensors; the host reads them back once per epoch, in one call;
* evaluation runs in large batches on the device, without gradients;
* batches come from iterables that live on the device (see
  :class:`helmholtz.transforms.DeviceDataset`), so no host-to-device copy
  sits in the step either;
* ``compile=True`` wraps the model in :func:`torch.compile` (worth it on a
  GPU for long runs; on the CPU the compile time usually outweighs the gain
  for short ones).

The learning curve summaries (:func:`helmholtz._ml.curves.convergence_epoch`
and friends) are computed from the per-epoch accuracies this returns.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .._extras import require
from ..errors import TrialError

__all__ = ["TrainResult", "fit", "EVAL_BATCH"]

#: Test images per evaluation batch (no gradients, so large batches are cheap).
EVAL_BATCH = 1024


@dataclass
class TrainResult:
    """What :func:`fit` measured.

    Attributes
    ----------
    accuracy_curve : list of float
        Test accuracy after each epoch.
    loss_curve : list of float
        Mean training loss of each epoch.
    train_time_s, eval_time_s : float
        Seconds spent in the training steps and in evaluation, all epochs.
    train_samples : int
        Samples seen in training, all epochs.
    state : dict
        The final weights (a CPU ``state_dict``).
    """

    accuracy_curve: list[float] = field(default_factory=list)
    loss_curve: list[float] = field(default_factory=list)
    train_time_s: float = 0.0
    eval_time_s: float = 0.0
    train_samples: int = 0
    state: dict = field(default_factory=dict)

    @property
    def samples_per_s(self) -> float | None:
        """Training throughput (samples per second of training steps)."""
        return self.train_samples / self.train_time_s if self.train_time_s > 0 else None


class _Stopwatch:
    """Times device work without synchronising: CUDA events on a GPU, the wall clock on the CPU."""

    def __init__(self, torch: Any, device: Any) -> None:
        self.cuda = device.type == "cuda"
        self.torch = torch
        self.spans: list[tuple[Any, Any]] = []
        self.host = 0.0

    def start(self) -> Any:
        if self.cuda:
            ev = self.torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return time.perf_counter()

    def stop(self, started: Any) -> None:
        if self.cuda:
            ev = self.torch.cuda.Event(enable_timing=True)
            ev.record()
            self.spans.append((started, ev))
        else:
            self.host += time.perf_counter() - started

    def seconds(self) -> float:
        """Total of the spans; call after the device has caught up (the epoch's read-back)."""
        total = self.host + sum(a.elapsed_time(b) / 1000.0 for a, b in self.spans)
        self.spans.clear()
        self.host = 0.0
        return total


def fit(
    model: Any,
    train_batches: Callable[[], Iterable[tuple[Any, Any]]],
    eval_batches: Callable[[], Iterable[tuple[Any, Any]]],
    *,
    epochs: int,
    optimizer: Any,
    scheduler: Any = None,
    device: Any = "cpu",
    label_smoothing: float = 0.0,
    autocast_dtype: Any = None,
    compile: bool = False,
    on_epoch: Callable[[int, float, float], None] | None = None,
    name: str = "trial",
) -> TrainResult:
    """Train ``model`` for ``epochs`` epochs, testing after each one.

    Parameters
    ----------
    model : torch.nn.Module
        On ``device`` already.
    train_batches, eval_batches : callable
        Each call returns a fresh iterable of ``(x, y)`` device tensors: the
        training batches of one epoch, and the test set in batches.
    epochs : int
    optimizer : torch.optim.Optimizer
        Over ``model``'s parameters.
    scheduler : optional
        Stepped after every optimiser step (``scheduler.step()``).
    device : str or torch.device
    label_smoothing : float
        Of the cross-entropy loss (computed in float32).
    autocast_dtype : torch.dtype, optional
        Mixed precision for the forward passes (e.g. ``torch.bfloat16`` on a GPU).
    compile : bool
        Run the forward passes through :func:`torch.compile`.
    on_epoch : callable, optional
        ``on_epoch(epoch, mean_loss, accuracy)`` after each epoch (from 1).
    name : str
        For the error message of a diverged run.

    Returns
    -------
    TrainResult

    Raises
    ------
    TrialError
        If the training loss becomes non-finite.
    """
    torch = require("torch", purpose="training")
    from torch.nn import functional as F

    dev = torch.device(device)
    forward = torch.compile(model) if compile else model
    autocast = torch.autocast(device_type=dev.type, dtype=autocast_dtype, enabled=autocast_dtype is not None)
    acc_dtype = torch.float64 if dev.type in ("cpu", "cuda") else torch.float32
    clock_train, clock_eval = _Stopwatch(torch, dev), _Stopwatch(torch, dev)
    result = TrainResult()
    for epoch in range(1, epochs + 1):
        model.train()
        loss_sum = torch.zeros((), device=dev, dtype=acc_dtype)
        seen = 0
        started = clock_train.start()
        for xb, yb in train_batches():
            with autocast:
                logits = forward(xb)
            loss = F.cross_entropy(logits.float(), yb, label_smoothing=label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            loss_sum += loss.detach() * yb.shape[0]  # stays on the device: no synchronisation per step
            seen += int(yb.shape[0])
        clock_train.stop(started)
        model.eval()
        correct = torch.zeros((), device=dev, dtype=torch.int64)
        tested = 0
        started = clock_eval.start()
        with torch.no_grad(), autocast:
            for xb, yb in eval_batches():
                correct += (forward(xb).argmax(1) == yb).sum()
                tested += int(yb.shape[0])
        clock_eval.stop(started)
        loss_total, n_correct = torch.stack([loss_sum, correct.to(acc_dtype)]).tolist()  # the epoch's one read-back
        result.train_time_s += clock_train.seconds()
        result.eval_time_s += clock_eval.seconds()
        result.train_samples += seen
        if not math.isfinite(loss_total):
            raise TrialError(f"{name}: the training loss diverged (non-finite) in epoch {epoch}")
        result.loss_curve.append(loss_total / max(1, seen))
        result.accuracy_curve.append(n_correct / max(1, tested))
        if on_epoch is not None:
            on_epoch(epoch, result.loss_curve[-1], result.accuracy_curve[-1])
    result.state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return result
