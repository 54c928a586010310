"""``helmholtz sweep``: train models on data compressed at several levels (resumable)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from ..data import dataset_names, get_spec
from ..experiments.recipes import RECIPES, get_recipe
from ..experiments.runners import runner_for
from ..experiments.store import db_path
from ..errors import install_hint
from ..experiments.sweep import DEFAULT_QUALITIES, EXECUTORS, EvalPlan, plan_trials, run_sweep
from . import command_line_message
from .common import attack_list, bitrate_list, eps_list, eval_qualities, int_list, name_list

__all__ = ["register", "main"]


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``sweep`` sub-command to the ``helmholtz`` parser."""
    p = subparsers.add_parser(
        "sweep",
        help="train models on data compressed at several levels (resumable)",
        description="Train each model at each compression level and seed; results go to OUT/results.sqlite. "
        "Running the same command again skips finished trials.",
    )
    names = dataset_names()
    p.add_argument("--dataset", default="cifar10",
                   help=f"data set: one of {', '.join(names)}; or prepared:DIR (helmholtz prepare), a .npz path, hf:NAME_OR_PATH, wds:SHARDS (default cifar10)")
    p.add_argument("--data-dir", default=None, help="data folder (default: $HELMHOLTZ_DATA)")
    p.add_argument("--download", action="store_true", help="download the data set into --data-dir if missing (checksummed)")
    p.add_argument("--models", type=name_list, default=["A"], help="comma-separated models, e.g. A,C,F, or audio models such as conv3 (default A)")
    p.add_argument("--qualities", type=int_list, default=None, help=f"JPEG qualities 1..100 (default {','.join(map(str, DEFAULT_QUALITIES))})")
    p.add_argument("--bitrates", type=bitrate_list, default=None, help="MP3 bitrates in kbps for audio data sets, e.g. 8,16,32,64,96,128; pcm = uncompressed baseline")
    p.add_argument("--epochs", type=int, default=None, help="epochs per trial (default: the recipe's, paper 200, fast 30)")
    p.add_argument("--seeds", type=int_list, default=[0], help="comma-separated seeds (default 0)")
    p.add_argument("--recipe", choices=sorted(RECIPES), default="paper", help="training recipe (default paper)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--train-subset", type=int, default=None, metavar="N", help="use N training images (a fixed random subset)")
    p.add_argument("--test-subset", type=int, default=None, metavar="N", help="use N test images (a fixed random subset)")
    p.add_argument("--image-size", default=None, metavar="HxW", help="bring the images of a folder or photo data set of mixed sizes to HxW on load (see --fit)")
    p.add_argument("--fit", choices=("crop", "pad", "stretch"), default=None,
                   help="how --image-size is reached: crop (shorter side, then centre crop; default), pad (longer side, black borders) or stretch")
    p.add_argument("--trials-per-device", type=int, default=1, metavar="K",
                   help="train K trials at once on each device: K worker processes per device here, 1/K GPU per task on Ray (default 1)")
    p.add_argument("--compile", action="store_true", help="compile the models with torch.compile (helps on a GPU for long runs)")
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help=f"run trials on this machine, or as Ray tasks ({install_hint('ray')}) (default local)")
    p.add_argument("--ray-address", default=None, help="Ray cluster address, host:port or auto (default: start a local Ray instance)")
    p.add_argument("--ray-num-cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all)")
    ev = p.add_argument_group("evaluations of finished trials (computed once each; adding some to a finished sweep trains nothing)")
    ev.add_argument("--eval-qualities", type=eval_qualities, default=(), metavar="Q,...",
                    help="test each model on the test set compressed at these JPEG qualities; 'none' = uncompressed, "
                    "'cifar10-c' = CIFAR-10-C's JPEG qualities 80,65,58,50,40 (e.g. 10,50,100,none)")
    ev.add_argument("--eval-bitrates", type=bitrate_list, default=(), metavar="KBPS,...", help="audio trials: test at these MP3 bitrates (pcm = uncompressed)")
    ev.add_argument("--attacks", type=attack_list, default=(), metavar="NAME,...", help="L-infinity attacks: fgsm, pgd (PGD: 10 steps of eps/4, seeded random start)")
    ev.add_argument("--eps", type=eps_list, default=(), metavar="E,...", help="attack radii in units of 1/255, 0..255 (e.g. 2,8; 0 = clean)")
    ev.add_argument("--attack-subset", type=int, default=None, metavar="N", help="attack the first N test images (the same for every model; default all)")
    ev.add_argument("--defense-qualities", type=int_list, default=(), metavar="Q,...",
                    help="also attack JPEG_q -> model on uncompressed images through the exact codec's straight-through gradient (BPDA)")
    ev.add_argument("--attack-seed", type=int, default=0, metavar="S", help="seed of PGD's random start (default 0)")
    bars = p.add_mutually_exclusive_group()
    bars.add_argument("--progress", dest="progress", action="store_true", default=None, help="always show progress bars")
    bars.add_argument("--no-progress", dest="progress", action="store_false", help="never show progress bars")
    p.add_argument("--out", required=True, help="output folder; the database is OUT/results.sqlite")
    p.set_defaults(func=main)
    return p


def main(args: argparse.Namespace) -> int:
    """Run ``helmholtz sweep`` from parsed arguments; returns the exit status."""
    spec = get_spec(args.dataset)
    runner = runner_for(args.dataset)
    if runner.level == "quality":
        if args.bitrates is not None:
            raise ValueError(f"--bitrates applies to audio data sets; {args.dataset} is compressed by JPEG quality (use --qualities)")
        levels = args.qualities if args.qualities is not None else list(DEFAULT_QUALITIES)
    else:
        if args.qualities is not None:
            raise ValueError(f"--qualities applies to image data sets; {args.dataset} is compressed at bitrates (use --bitrates)")
        if not args.bitrates:
            raise ValueError(f"{args.dataset} needs --bitrates (kbps, e.g. --bitrates 8,16,32,64,96,128)")
        levels = args.bitrates
    recipe = get_recipe(args.recipe)
    epochs = args.epochs if args.epochs is not None else recipe.default_epochs
    if args.fit is not None and args.image_size is None:
        raise ValueError("--fit applies with --image-size")
    image_size = args.image_size if args.image_size is None or args.fit in (None, "crop") else f"{args.image_size}:{args.fit}"
    specs = plan_trials(spec.name, args.models, levels, args.seeds, recipe.name, epochs, args.train_subset, args.test_subset, image_size)
    if args.data_dir is None and not os.environ.get("HELMHOLTZ_DATA") and not args.download and "path" not in spec.extra:
        raise ValueError("no data folder: pass --data-dir DIR or set HELMHOLTZ_DATA")
    if args.download and not args.data_dir:
        raise ValueError("--download needs --data-dir")
    if args.download and not spec.downloadable:
        raise ValueError(f"--download works for {', '.join(n for n in dataset_names() if get_spec(n).downloadable)}, not {spec.name}")
    evals = EvalPlan(
        eval_qualities=tuple(args.eval_qualities), eval_bitrates=tuple(args.eval_bitrates), attacks=tuple(args.attacks), eps=tuple(args.eps),
        attack_subset=args.attack_subset, defense_qualities=tuple(args.defense_qualities), seed=args.attack_seed,
    )
    t0 = time.perf_counter()
    res = run_sweep(
        specs, args.out, data_dir=args.data_dir, device=args.device, executor=args.executor, trials_per_device=args.trials_per_device,
        compile=args.compile, ray_address=args.ray_address, ray_num_cpus=args.ray_num_cpus, progress=args.progress, download=args.download,
        evals=evals, log=_log,
    )
    took = time.perf_counter() - t0
    recovered = f", {len(res.recovered)} recovered from an earlier failed write" if res.recovered else ""
    taken = f", {len(res.taken)} stored meanwhile by another sweep" if res.taken else ""
    evaluated = f", {res.evaluated} evaluation(s) computed" if not evals.empty else ""
    msg = (f"{res.ran} trial(s) run, {res.skipped} already done{recovered}{taken}, of {res.planned}{evaluated} in {took:.1f} s; "
           f"results in {db_path(args.out)}")
    if res.error:
        print(f"helmholtz sweep: error: {command_line_message('sweep', res.error)}", file=sys.stderr)
    if res.interrupted:
        print(f"interrupted: {msg}. Run the same command again to resume.", file=sys.stderr)
        return 130
    print(msg)
    for path in res.pending:
        print(f"kept: a finished trial could not be written to the database; it waits in {path} and the next run records it", file=sys.stderr)
    for key, why in res.failed:
        print(f"failed: {key}: {why}", file=sys.stderr)
    if res.error or res.failed or res.pending:  # say which trials this run stored and which it did not
        labels = {s.key(): s.label() for s in specs}
        print(f"stored by this run: {_listing([labels.get(k, k) for k in res.ran_keys])}", file=sys.stderr)
        print(f"not stored (the next run trains them): {_listing([labels.get(k, k) for k in res.missing if k not in _pending_keys(res)])}",
              file=sys.stderr)
    if res.error:
        return 2
    if res.failed or res.pending:
        return 1
    print(f"see them with: helmholtz report {args.out}")
    return 0


def _log(line: str) -> None:
    """The sweep's messages, with the Python parameters they name turned into this command's flags."""
    print(command_line_message("sweep", line), file=sys.stderr, flush=True)


def _listing(labels: list[str], most: int = 12) -> str:
    if not labels:
        return "none"
    more = f" and {len(labels) - most} more" if len(labels) > most else ""
    return ", ".join(labels[:most]) + more


def _pending_keys(res: Any) -> set[str]:
    """Keys of the plan whose finished result waits in a pending file (the next run records them without training)."""
    import json

    keys = set()
    for path in res.pending:
        try:
            with open(path, encoding="utf-8") as f:
                keys.add(str(json.load(f)["record"]["key"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return keys
