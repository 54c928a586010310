"""The trial runner of image data sets: JPEG at a quality, then one of the CIFAR models.

For one trial at quality ``q``: both splits are round-tripped through the
exact codec at ``q`` on the training device (4:2:0, Pillow's default), the
rate is the training set's entropy-coded bits per pixel
(:func:`helmholtz.jpeg.bits`), and the model trains with its recipe on the
compressed training set, with the recipe's augmentation done on the device,
testing on the compressed test set after every epoch.

Preparation streams: each split is read through its reader in chunks of
about 16 MiB, each chunk compressed and counted, and written into one
destination: a tensor on a CUDA device; on the CPU, memory for a data set
that is held in memory anyway, else a deleted temporary file in ``$TMPDIR``
(``HELMHOLTZ_CACHE_DIR`` overrides) mapped back as the tensor, so that the
process's memory stays flat in the data set's size. The two splits are never
concatenated, and the fingerprint of the compressed data is hashed chunk by
chunk as it is made (equal to :func:`array_sha256` of the whole arrays).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
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


#: Bytes of pixels compressed per codec call when a split is prepared.
CHUNK_BYTES = 16 << 20


def _check_data(ds: Any, levels: Any) -> None:
    if not hasattr(ds, "reader") or not hasattr(ds, "require_uniform_size"):
        raise DataError(f"image trials need an image data set (helmholtz.data.Dataset or a reader-backed one); got {type(ds).__name__}")
    # a sweep trains on batches: every image must have one size
    ds.require_uniform_size(how="pass --image-size HxW to helmholtz sweep (images are brought to it on load), or prepare the set with helmholtz prepare --size HxW")


def _destination(shape: tuple, dev: Any, in_memory: bool) -> tuple[Any, Any]:
    """An uninitialised uint8 tensor of ``shape`` on ``dev``: device memory, host memory, or a mapped deleted file."""
    import torch

    if dev.type != "cpu" or in_memory:
        return torch.empty(shape, dtype=torch.uint8, device=dev), None
    folder = os.environ.get("HELMHOLTZ_CACHE_DIR") or None
    f = tempfile.TemporaryFile(dir=folder, prefix="helmholtz-compressed-")
    return None, f


def _compress_split(reader: Any, quality: int | None, options: TrainOptions, in_memory: bool, hasher: Any = None, count_bits: bool = False) -> tuple[Any, int]:
    """``reader``'s images round-tripped at ``quality`` (None: as they are), chunk by chunk, as one uint8 tensor; and their bits."""
    import torch

    dev = torch.device(options.device)
    n = len(reader)
    shape = (n, *reader.image_shape)
    per_image = max(1, int(np.prod(reader.image_shape)))
    chunk = max(1, CHUNK_BYTES // per_image)
    dest, spill = _destination(shape, dev, in_memory)
    if hasher is not None:
        hasher.update(f"{np.dtype(np.uint8).str}{shape};".encode())
    bits = 0
    try:
        for start in range(0, n, chunk):
            x, _ = reader[start : start + chunk]
            x = np.ascontiguousarray(x)
            if count_bits:
                bits += int(np.asarray(jpeg.bits(x, quality, num_threads=options.num_threads), dtype=np.int64).sum())
            out = x if quality is None else compress_many(x, [quality], device=options.device)[0]
            if hasher is not None or spill is not None:
                host = out if isinstance(out, np.ndarray) else out.cpu().numpy()
                host = np.ascontiguousarray(host)
                if hasher is not None:
                    hasher.update(memoryview(host).cast("B"))
                if spill is not None:
                    spill.write(memoryview(host).cast("B"))
            if dest is not None:
                dest[start : start + len(x)] = torch.as_tensor(out).to(dev)
        if spill is not None:
            spill.flush()
            mapped = np.memmap(spill, dtype=np.uint8, mode="r+", shape=shape) if n else np.empty(shape, np.uint8)
            dest = torch.from_numpy(mapped)
    finally:
        if spill is not None:
            spill.close()  # the mapping keeps the deleted file alive as long as it is used
    return dest, bits


def _label_bytes(hasher: Any, labels: np.ndarray) -> None:
    y = np.ascontiguousarray(labels)
    hasher.update(f"{y.dtype.str}{y.shape};".encode())
    hasher.update(memoryview(y).cast("B"))


def _prepare(ds: Any, quality: int, options: TrainOptions) -> Prepared:
    """Both splits round-tripped at ``quality`` on the device, chunk by chunk, and the training set's bpp.

    The splits are read through their readers and never concatenated;
    ``data_sha256`` equals :func:`array_sha256` of ``[x_train, y_train,
    x_test, y_test]`` compressed, computed as the chunks are made.
    """
    import torch

    t0 = time.perf_counter()
    in_memory = isinstance(ds, Dataset)
    hasher = hashlib.sha256()
    train, test = ds.reader("train"), ds.reader("test")
    x_train, bits = _compress_split(train, quality, options, in_memory, hasher, count_bits=True)
    _label_bytes(hasher, ds.y_train)
    x_test, _ = _compress_split(test, quality, options, in_memory, hasher)
    _label_bytes(hasher, ds.y_test)
    dev = torch.device(options.device)
    y_train = torch.as_tensor(ds.y_train).to(dev)
    y_test = torch.as_tensor(ds.y_test).to(dev)
    h, w, _ = train.image_shape
    pixels = len(train) * h * w
    compress_time = time.perf_counter() - t0
    return Prepared(
        train=(x_train, y_train),
        test=(x_test, y_test),
        rate={"bpp": float(bits) / pixels},
        data_sha256=hasher.hexdigest(),
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
            compressed[q] = _compress_split(ds.reader("test"), q, options, isinstance(ds, Dataset))[0]
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
