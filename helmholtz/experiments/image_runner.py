"""The trial runner of image data sets: JPEG at a quality, then one of the CIFAR models."""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Sequence

import numpy as np

from .. import jpeg
from .._ml.curves import convergence_epoch
from .._ml.device_data import DeviceDataset, compress_many, to_float_nchw
from .._ml.models import check_model_name, cifar_model, count_parameters
from ..data import Dataset
from .progress import progress_bar
from .recipes import get_recipe
from .runners import TrialRunner
from .spec import TrialSpec

__all__ = ["RUNNER"]


def _image_check_model(name: str) -> str:
    return check_model_name(name)


def _image_check_level(q: Any) -> int:
    if isinstance(q, bool) or not isinstance(q, (int, np.integer)):
        raise TypeError(f"quality must be an int in 1..100; got {q!r}")
    if not 1 <= q <= 100:
        raise ValueError(f"quality must be in 1..100; got {q}")
    return int(q)


def _image_compress(ds: Dataset, qualities: Sequence[int], device: str) -> dict:
    """Both splits at every quality, one forward transform (one codec call) for all of them."""
    import torch


    both = np.concatenate([ds.x_train, ds.x_test])
    out = compress_many(both, list(qualities), device=device)  # (Q, N, H, W, C) on device
    n = len(ds.x_train)
    return {int(q): (out[k, :n], out[k, n:]) for k, q in enumerate(qualities)} if isinstance(out, torch.Tensor) else {}


def _image_rate(ds: Dataset, qualities: Sequence[int]) -> dict:
    """bits per pixel of the training set's entropy-coded scans, when ``jpeg.bits_many`` exists."""
    qualities = [int(q) for q in qualities]
    if not hasattr(jpeg, "bits_many") or not qualities:
        return {q: {"bpp": None} for q in qualities}
    x = ds.x_train
    bits = np.asarray(jpeg.bits_many(x, qualities, subsampling="4:2:0"), dtype=np.int64)
    pixels = x.shape[0] * x.shape[1] * x.shape[2]
    return {q: {"bpp": float(bits[k].sum()) / pixels} for k, q in enumerate(qualities)}


def _image_train(spec: TrialSpec, ds: Dataset, x_train: Any, x_test: Any, device: str, progress: bool | None) -> dict:
    """Train ``spec.model`` on the compressed splits; evaluate on the test set after every epoch."""
    import torch
    from torch.nn import functional as F


    recipe = get_recipe(spec.recipe)
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    torch.manual_seed(spec.seed)
    np.random.seed(spec.seed % 2**32)
    h, w, c = ds.image_shape
    model = cifar_model(spec.model, in_channels=c, num_classes=ds.num_classes, image_size=(h, w)).to(dev)
    channels_last = cuda and recipe.channels_last
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = count_parameters(model)
    train = DeviceDataset(
        x_train, ds.y_train, recipe.batch_for(len(ds.y_train)), device=dev, shuffle=True, shift=recipe.shift, flip=recipe.flip,
        channels_last=channels_last, seed=spec.seed,
    )
    x_eval = torch.as_tensor(x_test).to(dev)
    y_eval = torch.as_tensor(ds.y_test).to(dev)
    opt, sched = recipe.make_optimizer(model, len(train), spec.epochs)
    autocast = torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=cuda and recipe.mixed_precision)
    accuracy, losses = [], []
    train_time = 0.0
    bar = progress_bar(spec.epochs, f"  {spec.label()}", progress, leave=False, position=1)
    try:
        for _epoch in range(spec.epochs):
            model.train()
            t0 = time.perf_counter()
            total_loss, seen = 0.0, 0
            for xb, yb in train:
                with autocast:
                    logits = model(xb)
                loss = F.cross_entropy(logits.float(), yb, label_smoothing=recipe.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                total_loss += float(loss.detach()) * len(yb)
                seen += len(yb)
            if cuda:
                torch.cuda.synchronize(dev)
            train_time += time.perf_counter() - t0
            if not math.isfinite(total_loss):
                raise FloatingPointError(f"{spec.label()}: the training loss diverged (non-finite)")
            model.eval()
            correct = 0
            with torch.no_grad(), autocast:
                for start in range(0, len(y_eval), 1000):
                    xb = to_float_nchw(x_eval[start : start + 1000], channels_last)
                    correct += int((model(xb).argmax(1) == y_eval[start : start + 1000]).sum())
            accuracy.append(correct / max(1, len(y_eval)))
            losses.append(total_loss / max(1, seen))
            bar.set_postfix(loss=f"{losses[-1]:.3f}", acc=f"{accuracy[-1]:.3f}")
            bar.update(1)
    finally:
        bar.close()
    best = int(np.argmax(accuracy))
    return {
        "params": params,
        "test_accuracy": accuracy[-1],
        "best_test_accuracy": accuracy[best],
        "best_epoch": best + 1,
        "convergence_epoch": convergence_epoch(accuracy),
        "accuracy_curve": accuracy,
        "loss_curve": losses,
        "train_images": int(len(ds.y_train)),
        "test_images": int(len(ds.y_test)),
        "pixels_per_image": int(h * w),
        "train_time_s": train_time,
        "images_per_s": len(ds.y_train) * spec.epochs / train_time if train_time > 0 else None,
    }


def _image_can_measure() -> bool:
    return hasattr(jpeg, "bits_many")


RUNNER = TrialRunner(_image_check_model, _image_check_level, _image_compress, _image_rate, _image_train, "quality", _image_can_measure)
