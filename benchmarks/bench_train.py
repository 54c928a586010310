"""Training throughput of model A on this machine: the one trainer against the loop it replaced, packed trials, torch.func.

Three measurements, each side by side in one run:

trainer
    Images per second of model A (recipe ``fast``: AdamW one-cycle, label
    smoothing, shifts + flips on the device) on CIFAR-10-sized images, with
    :func:`helmholtz._ml.trainer.fit` against the pre-v2 loop (kept below
    verbatim as the baseline: it read the loss back with ``float(loss)`` after
    every step and evaluated in batches of 1,000 with a read-back each).
packed
    Wall time of the same small sweep (4 trials of model A) with
    ``--trials-per-device 1`` and ``2``: trials per minute and the gain.
vmap
    One training step of K = 2 copies of model A as one ``torch.func.vmap``
    call over stacked weights, against two ordinary steps, to see whether
    in-process vectorised training is worth having (it is kept only if faster).

Run: ``python benchmarks/bench_train.py [--images 2048] [--epochs 2] [--skip-packed]``.
Numbers move with the machine's load: compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from _common import cifar_path

from helmholtz._ml.trainer import EVAL_BATCH, fit
from helmholtz.experiments.recipes import RECIPES
from helmholtz.models import cifar_model
from helmholtz.transforms import DeviceDataset, to_float_nchw


def _data(n_train: int, n_test: int) -> tuple:
    path = cifar_path()
    if path is not None:
        with np.load(path) as z:
            return z["x_train"][:n_train], z["y_train"][:n_train].astype(np.int64), z["x_test"][:n_test], z["y_test"][:n_test].astype(np.int64)
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n_train),
            rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n_test))


def legacy_loop(model, train, x_eval, y_eval, opt, sched, epochs: int, label_smoothing: float) -> float:
    """The training loop of helmholtz before the one trainer (4291d78), as the baseline. Returns training seconds."""
    train_time = 0.0
    for _epoch in range(epochs):
        model.train()
        t0 = time.perf_counter()
        total_loss, seen = 0.0, 0
        for xb, yb in train:
            logits = model(xb)
            loss = F.cross_entropy(logits.float(), yb, label_smoothing=label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            total_loss += float(loss.detach()) * len(yb)  # a host read-back per step
            seen += len(yb)
        train_time += time.perf_counter() - t0
        if not math.isfinite(total_loss):
            raise FloatingPointError("diverged")
        model.eval()
        correct = 0
        with torch.no_grad():
            for start in range(0, len(y_eval), 1000):
                xb = to_float_nchw(x_eval[start : start + 1000])
                correct += int((model(xb).argmax(1) == y_eval[start : start + 1000]).sum())
    return train_time


def bench_trainer(images: int, epochs: int, repeats: int) -> dict:
    x_tr, y_tr, x_te, y_te = _data(images, 1000)
    recipe = RECIPES["fast"]
    rates = {"legacy loop": [], "helmholtz fit": []}
    for _ in range(repeats):
        for name in rates:  # alternate, so both see the same machine
            torch.manual_seed(0)
            model = cifar_model("A")
            train = DeviceDataset(torch.as_tensor(x_tr), y_tr, recipe.batch_size, shift=recipe.shift, flip=recipe.flip, seed=0)
            opt, sched = recipe.make_optimizer(model, len(train), epochs)
            x_eval, y_eval = torch.as_tensor(x_te), torch.as_tensor(y_te)
            if name == "legacy loop":
                seconds = legacy_loop(model, train, x_eval, y_eval, opt, sched, epochs, recipe.label_smoothing)
            else:
                batches = lambda: ((to_float_nchw(x_eval[i : i + EVAL_BATCH]), y_eval[i : i + EVAL_BATCH]) for i in range(0, len(y_eval), EVAL_BATCH))  # noqa: E731
                seconds = fit(model, lambda: train, batches, epochs=epochs, optimizer=opt, scheduler=sched, label_smoothing=recipe.label_smoothing).train_time_s
            rates[name].append(images * epochs / seconds)
    return {name: max(v) for name, v in rates.items()}


def bench_packed(data_dir: str | None) -> dict | None:
    if data_dir is None and cifar_path() is None:
        return None
    from helmholtz.experiments.sweep import plan_trials, run_sweep

    root = data_dir or str(cifar_path().parent)
    specs = plan_trials("cifar10", ["A"], [10, 20, 50, 100], [0], "fast", 1, 1024, 500)
    out = {}
    for k in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            res = run_sweep(specs, Path(tmp) / "out", data_dir=root, trials_per_device=k, progress=False, log=lambda line: None)
            took = time.perf_counter() - t0
            assert res.ran == len(specs), res
        out[k] = took
    return out


def bench_vmap(batch: int = 128, steps: int = 20, k: int = 2) -> dict:
    """K copies of model A trained as one torch.func.vmap call over stacked weights (one AdamW over the
    stacked tensors is K independent AdamWs, element for element) against K ordinary training steps."""
    from torch.func import functional_call, stack_module_state, vmap

    torch.manual_seed(0)
    models = [cifar_model("A").train() for _ in range(k)]
    x = torch.rand(k, batch, 3, 32, 32)
    y = torch.randint(0, 10, (k, batch))
    params, buffers = stack_module_state(models)
    base = cifar_model("A").to("meta").train()
    forward = vmap(lambda p, b, xb: functional_call(base, (p, b), (xb,)), randomness="different")  # dropout: a mask per model
    stacked_opt = torch.optim.AdamW(list(params.values()), lr=1e-3)
    opts = [torch.optim.AdamW(m.parameters(), lr=1e-3) for m in models]

    def stacked_step():
        logits = forward(params, buffers, x)
        loss = F.cross_entropy(logits.reshape(-1, 10), y.reshape(-1), reduction="sum") / batch  # the sum of the K models' mean losses
        stacked_opt.zero_grad(set_to_none=True)
        loss.backward()
        stacked_opt.step()

    def ordinary_steps():
        for i, m in enumerate(models):
            loss = F.cross_entropy(m(x[i]), y[i])
            opts[i].zero_grad(set_to_none=True)
            loss.backward()
            opts[i].step()

    best = {"vmap (one call, stacked weights)": float("inf"), "ordinary steps, one model at a time": float("inf")}
    for fn in (stacked_step, ordinary_steps):
        fn()
        fn()  # warm-up
    for _ in range(2):  # alternate, so both see the same machine
        for name, fn in zip(best, (stacked_step, ordinary_steps)):
            t0 = time.perf_counter()
            for _ in range(steps):
                fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: k * batch * steps / t for name, t in best.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=2048)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--skip-packed", action="store_true")
    p.add_argument("--only-vmap", action="store_true")
    a = p.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    if a.only_vmap:
        a.skip_packed = True
    r = bench_trainer(a.images, a.epochs, a.repeats) if not a.only_vmap else None
    if r is not None:
        print(f"\n| model A, fast recipe, {a.images} images x {a.epochs} epochs, CPU | images/s |\n| --- | --- |")
        for name, v in r.items():
            print(f"| {name} | {v:,.0f} |")
        print(f"| ratio (fit / legacy) | {r['helmholtz fit'] / r['legacy loop']:.2f}x |")
    if not a.skip_packed:
        packed = bench_packed(a.data_dir)
        if packed is None:
            print("\npacked: skipped (no cifar10.npz; set HELMHOLTZ_DATA)")
        else:
            print("\n| 4 trials of model A (1,024 train / 500 test images, 1 epoch), CPU | wall s | trials/min |\n| --- | --- | --- |")
            for k, s in packed.items():
                print(f"| --trials-per-device {k} | {s:.1f} | {4 * 60 / s:.1f} |")
            print(f"| gain (K=2 over K=1) | {packed[1] / packed[2]:.2f}x | |")
    v = bench_vmap()
    names = list(v)
    print("\n| 2 x model A, AdamW training steps, batch 128, CPU | images/s |\n| --- | --- |")
    for name, val in v.items():
        print(f"| {name} | {val:,.0f} |")
    print(f"| ratio (vmap / ordinary) | {v[names[0]] / v[names[1]]:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
