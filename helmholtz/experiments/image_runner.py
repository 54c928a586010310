"""The trial runner of image data sets: JPEG at a quality, then one of the CIFAR models.

For one trial at quality ``q``: both splits are round-tripped through the
exact codec at ``q`` on the training device (4:2:0, Pillow's default), the
rate is the training set's entropy-coded bits per pixel
(:func:`helmholtz.jpeg.bits`), and the model trains with its recipe on the
compressed training set, with the recipe's augmentation done on the device,
testing on the compressed test set after every epoch.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .. import jpeg
from .._ml.curves import best_epoch, convergence_epoch
from .._ml.device_data import DeviceDataset, compress_many, to_float_nchw
from .._ml.models import check_model_name, cifar_model, count_parameters
from .._ml.trainer import EVAL_BATCH, fit
from ..data import Dataset
from ..errors import DataError
from .fingerprint import array_sha256
from .progress import progress_bar
from .recipes import get_recipe
from .runners import Prepared, TrainOptions, TrialRunner
from .spec import TrialSpec

__all__ = ["RUNNER", "check_quality"]


def check_quality(q: Any) -> int:
    """A JPEG quality 1..100 as an int, or a TypeError / ValueError naming it."""
    if isinstance(q, bool) or not isinstance(q, (int, np.integer)):
        raise TypeError(f"quality must be an int in 1..100; got {q!r}")
    if not 1 <= q <= 100:
        raise ValueError(f"quality must be in 1..100; got {q}")
    return int(q)


def _check_data(ds: Dataset, levels: Any) -> None:
    if not isinstance(ds, Dataset):
        raise DataError(f"image trials need an image Dataset; got {type(ds).__name__}")
    # a sweep trains on batches: every image must have one size
    ds.require_uniform_size(how="pass --image-size HxW to helmholtz sweep (images are resized to it on load)")


def _prepare(ds: Dataset, quality: int, options: TrainOptions) -> Prepared:
    """Both splits round-tripped at ``quality`` on the device (one codec call), and the training set's bpp."""
    import torch

    t0 = time.perf_counter()
    n = len(ds.y_train)
    both = compress_many(np.concatenate([ds.x_train, ds.x_test]), [quality], device=options.device)[0]
    x_train, x_test = both[:n], both[n:]
    dev = torch.device(options.device)
    y_train = torch.as_tensor(ds.y_train).to(dev)
    y_test = torch.as_tensor(ds.y_test).to(dev)
    bits = jpeg.bits(ds.x_train, quality, num_threads=options.num_threads)
    pixels = ds.x_train.shape[0] * ds.x_train.shape[1] * ds.x_train.shape[2]
    compress_time = time.perf_counter() - t0
    return Prepared(
        train=(x_train, y_train),
        test=(x_test, y_test),
        rate={"bpp": float(np.asarray(bits, dtype=np.int64).sum()) / pixels},
        data_sha256=array_sha256([x_train, ds.y_train, x_test, ds.y_test]),
        compress_time_s=compress_time,
    )


def _describe(spec: TrialSpec, ds: Dataset) -> dict:
    return get_recipe(spec.recipe).describe(len(ds.y_train), spec.epochs)


def _train(spec: TrialSpec, ds: Dataset, prepared: Prepared, options: TrainOptions) -> dict:
    """Train ``spec.model`` on the compressed splits; test after every epoch."""
    import torch

    recipe = get_recipe(spec.recipe)
    dev = torch.device(options.device)
    cuda = dev.type == "cuda"
    torch.manual_seed(spec.seed)
    h, w, c = ds.image_shape
    model = cifar_model(spec.model, in_channels=c, num_classes=ds.num_classes, image_size=(h, w)).to(dev)
    channels_last = cuda and recipe.channels_last
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    x_train, y_train = prepared.train
    x_test, y_test = prepared.test
    train = DeviceDataset(
        x_train, y_train, recipe.batch_for(len(ds.y_train)), device=dev, shuffle=True, shift=recipe.shift, flip=recipe.flip,
        channels_last=channels_last, seed=spec.seed,
    )

    def test_batches():
        for start in range(0, x_test.shape[0], EVAL_BATCH):
            yield to_float_nchw(x_test[start : start + EVAL_BATCH], channels_last), y_test[start : start + EVAL_BATCH]

    opt, sched = recipe.make_optimizer(model, len(train), spec.epochs)
    bar = progress_bar(spec.epochs, f"  {spec.label()}", options.progress, leave=False, position=1)

    def on_epoch(epoch: int, loss: float, acc: float) -> None:
        bar.set_postfix(loss=f"{loss:.3f}", acc=f"{acc:.3f}")
        bar.update(1)

    try:
        result = fit(
            model, lambda: train, test_batches, epochs=spec.epochs, optimizer=opt, scheduler=sched, device=dev,
            label_smoothing=recipe.label_smoothing, autocast_dtype=torch.bfloat16 if cuda and recipe.mixed_precision else None,
            compile=options.compile, on_epoch=on_epoch, name=spec.label(),
        )
    finally:
        bar.close()
    curve = result.accuracy_curve
    best = best_epoch(curve)
    return {
        "params": count_parameters(model),
        "test_accuracy": curve[-1],
        "best_test_accuracy": curve[best - 1],
        "best_epoch": best,
        "convergence_epoch": convergence_epoch(curve),
        "accuracy_curve": curve,
        "loss_curve": result.loss_curve,
        "train_images": int(len(ds.y_train)),
        "test_images": int(len(ds.y_test)),
        "pixels_per_image": int(h * w),
        "train_time_s": result.train_time_s,
        "images_per_s": result.samples_per_s,
        "state": result.state,
    }


def _evaluate(spec: TrialSpec, ds: Dataset, record: dict, state: dict, requests: list, options: TrainOptions) -> list[tuple]:
    """Each request on the trial's test set: ``(request, accuracy, images, seconds)``.

    Clean requests test all test images compressed at ``eval_quality``;
    attacks test the first ``images`` of them, on the model alone (threat (a))
    or through ``JPEG_q -> model`` with the exact op's straight-through
    gradient (threat (b), ``defense_quality`` = q).
    """
    import torch

    from .._ml.attacks import accuracy, attack
    from .._ml.transforms import jpeg_tensor

    dev = torch.device(options.device)
    h, w, c = ds.image_shape
    model = cifar_model(spec.model, in_channels=c, num_classes=ds.num_classes, image_size=(h, w))
    model.load_state_dict(state)
    model = model.to(dev).eval()
    y_all = torch.as_tensor(ds.y_test).to(dev)
    compressed: dict = {}

    def test_images(q: int | None) -> Any:
        if q not in compressed:
            compressed[q] = torch.as_tensor(ds.x_test).to(dev) if q is None else compress_many(ds.x_test, [q], device=options.device)[0]
        return compressed[q]

    out = []
    for req in requests:
        t0 = time.perf_counter()
        n = len(ds.y_test) if req.images is None else min(req.images, len(ds.y_test))
        x_all, y = test_images(req.eval_quality)[:n], y_all[:n]
        if req.defense_quality is None:
            net = model
        else:
            def net(z, q=req.defense_quality):  # the defence: an exact JPEG round trip in front of the model
                return model(jpeg_tensor(z, q, grad="ste"))
        correct = torch.zeros((), dtype=torch.int64, device=dev)
        gen = torch.Generator(device=dev).manual_seed(req.seed)
        for start in range(0, n, EVAL_BATCH if req.eval == "clean" else 256):
            stop = min(n, start + (EVAL_BATCH if req.eval == "clean" else 256))
            xb, yb = to_float_nchw(x_all[start:stop]), y[start:stop]
            if req.eval != "clean":
                xb = attack(req.eval, net, xb, yb, req.eps / 255.0, generator=gen)
            correct += accuracy(net, xb, yb)
        out.append((req, int(correct.item()) / max(1, n), n, time.perf_counter() - t0))
    return out


RUNNER = TrialRunner(
    level="quality",
    check_model=check_model_name,
    check_level=check_quality,
    prepare=_prepare,
    train=_train,
    describe_recipe=_describe,
    check_data=_check_data,
    evaluate=_evaluate,
)
