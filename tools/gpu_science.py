"""The science run behind tools/gpu_science.sh: the second command of a GPU window.

    python3 tools/gpu_science.py [--out DIR] [--budget-s 400] [--device cuda] [--epochs N]

Trains the paper's model A on the carried CIFAR-10 subset at the paper's nine
qualities (1, 5, 10, 15, 20, 25, 50, 75, 100) with the ``fast`` recipe, all
nine trials at once on the GPU (``helmholtz sweep --trials-per-device``),
within ``--budget-s`` (default 400 s; the device call's ``timeout_s`` is 420),
and writes the accuracy against quality, the bits per pixel and the Helmholtz
numbers. Sections (tools/gpu_window.py: each its own process group under its
own limit; the summary rewritten as each ends):

  env      versions, the GPU, the carried subset unpacked (tools/gpu_check.py's env)
  build    the C extension (tools/gpu_check.py's build: the carried prebuilt one, else built)
  compile  the cuda backend's first call, kept in the kernel cache, equal to the C core: no
           host fallback can pass for the GPU (cuda device only)
  probe    one epoch of all the trials, packed exactly as the sweep will be: the wall time of the
           whole command and each trial's training time. From them: epoch_s (training + test
           per epoch, the slowest trial) and fixed_s (start, data, codec, bits; the rest), and the
           epochs E that fit the budget left: fixed_s + rounds * E * epoch_s * 1.1 <= time left
           (rounds = ceil(trials / trials per device)), at most --max-epochs. Recorded as "chosen".
  sweep    helmholtz sweep with E epochs (resumable: a rerun with --epochs E finishes it)
  report   helmholtz report --format json (OUT/science_report.json) and its plots into OUT;
           the figures: the accuracy-against-quality table (with bpp and the curves), the
           Helmholtz numbers, and the prediction of the sweep's time against what it took

Writes DIR/science.json (summary), DIR/science.jsonl, DIR/science.log,
DIR/science_report.json and the plots accuracy_vs_quality.png,
accuracy_vs_bpp.png and convergence_vs_quality.png: seven files. A sweep that
compressed on the host (the library's RuntimeWarning) fails its section: no
host fallback passes for the GPU.

Plumbing check without a GPU (tests/test_gpu_check.py runs it): ``--device cpu``
with a tiny budget, subset and quality list, e.g.
``python tools/gpu_science.py --device cpu --budget-s 150 --qualities 5,50 --train-subset 200
--test-subset 100 --trials-per-device 2 --data some/cifar10.npz``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
sys.path.insert(0, str(TOOLS))
import build_prebuilt  # noqa: E402
import gpu_check  # noqa: E402
import gpu_window as gw  # noqa: E402

PAPER_QUALITIES = (1, 5, 10, 15, 20, 25, 50, 75, 100)
BUDGET_S = 400.0  # at most 420 (issue 22); the device call's timeout_s is TIMEOUT_S
TIMEOUT_S = 420
CAPS = {"env": 40, "build": 120, "compile": 60, "probe": 120, "sweep": 400, "report": 45}
REPORT_RESERVE_S = 30.0  # kept for the report when the sweep's limit is set
SAFETY = 1.1  # the predicted sweep time is multiplied by this before it must fit
HOST_FALLBACK = "compressing on the host"  # the library's warning when the cuda codec cannot run
WORK = gpu_check.WORK / "science"


def sweep_command(args, epochs: int, out: Path) -> list[str]:
    cmd = [sys.executable, "-m", "helmholtz", "sweep", "--dataset", "cifar10", "--data-dir", str(gpu_check.DATA_DIR),
           "--models", "A", "--qualities", ",".join(map(str, args.qualities)), "--epochs", str(epochs), "--recipe", "fast",
           "--device", args.device, "--trials-per-device", str(args.trials_per_device), "--no-progress", "--out", str(out)]
    if args.train_subset:
        cmd += ["--train-subset", str(args.train_subset)]
    if args.test_subset:
        cmd += ["--test-subset", str(args.test_subset)]
    return cmd


def trials(db: Path) -> list[dict]:
    if not db.is_file():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT quality, epochs, train_time_s, wall_time_s, compress_time_s, images_per_s, "
                                             "train_images, test_images, test_accuracy, bpp FROM trials ORDER BY quality")]
    finally:
        con.close()


def run_sweep(cmd: list[str]) -> tuple[int, float, str]:
    """The sweep, its output streamed into the section's log; (exit, wall seconds, output)."""
    print("+ " + " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in p.stdout:
        print(line, end="", flush=True)
        lines.append(line)
    return p.wait(), time.perf_counter() - t0, "".join(lines)


# ---- sections (each runs in its own process) ------------------------------------------------------

def section_probe(args, out: Path) -> int:
    dest = WORK / "probe"
    shutil.rmtree(dest, ignore_errors=True)
    rc, wall, text = run_sweep(sweep_command(args, 1, dest))
    rows = trials(dest / "results.sqlite")
    gw.figures(exit=rc, wall_s=round(wall, 2), trials=len(rows), trials_per_device=args.trials_per_device)
    if HOST_FALLBACK in text:
        gw.result("failed", "the sweep compressed on the host (the cuda codec could not run): see science.log")
        return 0
    if rc != 0 or len(rows) != len(args.qualities):
        gw.result("failed", f"the probe sweep exited {rc} with {len(rows)} of {len(args.qualities)} trials")
        return 0
    train = max(r["train_time_s"] for r in rows)
    share_test = rows[0]["test_images"] / max(1, rows[0]["train_images"])
    epoch_s = train * (1 + share_test)  # testing once per epoch: a forward pass over test images, costed as training ones
    rounds = math.ceil(len(args.qualities) / args.trials_per_device)
    fixed_s = max(0.0, wall - rounds * epoch_s)
    gw.figures(epoch_s=round(epoch_s, 3), fixed_s=round(fixed_s, 2), rounds=rounds,
               train_time_s_per_trial={r["quality"]: round(r["train_time_s"], 3) for r in rows},
               images_per_s_per_trial={r["quality"]: round(r["images_per_s"] or 0, 1) for r in rows},
               aggregate_images_per_s=round(sum(r["images_per_s"] or 0 for r in rows) / rounds, 1),
               compress_time_s_per_trial={r["quality"]: round(r["compress_time_s"] or 0, 3) for r in rows},
               train_images=rows[0]["train_images"], test_images=rows[0]["test_images"])
    gw.result("ok")
    return 0


def section_sweep(args, out: Path) -> int:
    dest = WORK / f"sweep-e{args.epochs}"
    rc, wall, text = run_sweep(sweep_command(args, args.epochs, dest))
    rows = trials(dest / "results.sqlite")
    done = [r for r in rows if r["epochs"] == args.epochs]
    gw.figures(exit=rc, wall_s=round(wall, 2), trials=len(done), epochs=args.epochs, results=str(dest / "results.sqlite"))
    if HOST_FALLBACK in text:
        gw.result("failed", "the sweep compressed on the host (the cuda codec could not run): see science.log")
    elif rc != 0 or len(done) != len(args.qualities):
        gw.result("failed", f"the sweep exited {rc} with {len(done)} of {len(args.qualities)} trials")
    else:
        gw.result("ok")
    return 0


def section_report(args, out: Path) -> int:
    dest = WORK / f"sweep-e{args.epochs}"
    cmd = [sys.executable, "-m", "helmholtz", "report", str(dest), "--format", "json", "--plots-dir", str(out)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=None)
    print(r.stderr[-4000:])
    if r.returncode != 0:
        gw.result("failed", f"helmholtz report exited {r.returncode}: {r.stderr.strip()[-300:]}")
        return 0
    doc = json.loads(r.stdout)
    (out / "science_report.json").write_text(json.dumps(doc, indent=2))
    from helmholtz.experiments.report import load_trials  # the curves, which the report's JSON leaves out

    curves = {int(t.quality): t.accuracy_curve for t in load_trials(dest).itertuples() if t.epochs == args.epochs}
    summary = [s for s in doc["summary"] if s.get("epochs") == args.epochs and s.get("model") == "A"]
    table = [{"quality": s["quality"], "bpp": s["bpp"], "test_accuracy": s["test_accuracy_mean"],
              "best_test_accuracy": s["best_test_accuracy_mean"], "convergence_epoch": s["convergence_epoch_mean"],
              "accuracy_curve": curves.get(int(s["quality"]))} for s in summary]
    numbers = [h for h in doc["helmholtz"] if h.get("epochs") == args.epochs]
    print(f"\nmodel A, recipe fast, {args.epochs} epochs, {summary[0]['train_subset'] if summary else '?'} training images")
    print(f"{'quality':>7} {'bpp':>7} {'test acc':>9} {'best acc':>9} {'conv. epoch':>11}")
    for row in table:
        print(f"{row['quality']:>7} {row['bpp']:>7.3f} {row['test_accuracy']:>9.4f} {row['best_test_accuracy']:>9.4f} "
              f"{row['convergence_epoch'] if row['convergence_epoch'] is not None else '':>11}")
    for h in numbers:
        print(f"q* = {h['q_star']} (accuracy {h['accuracy_q_star']:.4f}, {h['bpp_q_star']:.3f} bpp); "
              f"H = bpp(100) - bpp(q*) = {h['H_bits_per_pixel']:.3f} bits/pixel; N*H = {h['NH_bits']:.4g} bits")
    gw.figures(table=table, helmholtz=numbers, plots=[Path(p).name for p in doc.get("plots", [])],
               warnings=doc.get("warnings"), report_json="science_report.json")
    gw.result("ok" if len(table) == len(args.qualities) else "failed",
              None if len(table) == len(args.qualities) else f"{len(table)} of {len(args.qualities)} qualities in the report")
    return 0


SECTION_FUNCS = {"probe": section_probe, "sweep": section_sweep, "report": section_report}


# ---- the orchestrator -----------------------------------------------------------------------------

def choose_epochs(probe: dict, left_s: float, max_epochs: int) -> dict:
    """The epochs that fit ``left_s`` seconds by the probe's figures, and the prediction behind them."""
    epoch_s, fixed_s, rounds = probe["epoch_s"], probe["fixed_s"], probe["rounds"]
    fit = math.floor((left_s / SAFETY - fixed_s) / (rounds * max(epoch_s, 1e-6)) + 1e-9)  # 1e-9: 110 / 1.1 is 99.99...
    epochs = max(0, min(max_epochs, fit))
    return {"epochs": epochs, "fit": fit, "max_epochs": max_epochs, "left_s": round(left_s, 1),
            "predicted_sweep_s": round(fixed_s + rounds * epochs * epoch_s, 1), "safety": SAFETY,
            "rule": "largest E with (fixed_s + rounds * E * epoch_s) * safety <= time left for the sweep, at most max_epochs"}


def qualities(text: str) -> tuple[int, ...]:
    try:
        qs = tuple(int(q) for q in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"qualities must be integers 1..100 separated by commas; got {text!r}") from None
    if not qs or any(not 1 <= q <= 100 for q in qs):
        raise argparse.ArgumentTypeError(f"qualities must be integers 1..100; got {text!r}")
    return qs


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; got {text}")
    return value


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "gpu-science-out"))
    ap.add_argument("--budget-s", type=float, default=float(os.environ.get("GPU_SCIENCE_BUDGET_S", BUDGET_S)),
                    help=f"the whole run, in seconds (default {BUDGET_S:.0f}; the device call's timeout_s is {TIMEOUT_S})")
    ap.add_argument("--device", default="cuda", help="cuda (default), or cpu to check the plumbing without a GPU")
    ap.add_argument("--qualities", type=qualities, default=PAPER_QUALITIES, help="default: the paper's nine")
    ap.add_argument("--trials-per-device", type=positive, default=None, help="trials at once on the device (default: all of them)")
    ap.add_argument("--epochs", type=positive, default=None, help="skip the probe and train this many epochs (e.g. to finish a sweep)")
    ap.add_argument("--max-epochs", type=positive, default=30, help="at most this many epochs (default 30, the fast recipe's)")
    ap.add_argument("--train-subset", type=positive, default=None, help="train on N of the carried images (default all)")
    ap.add_argument("--test-subset", type=positive, default=None, help="test on N of the carried images (default all)")
    ap.add_argument("--data", default=None, help="the packed subset or a cifar10.npz (default gpu-data/cifar10-subset.npz)")
    ap.add_argument("--section", default=None, help=argparse.SUPPRESS)
    return ap


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.trials_per_device is None:
        args.trials_per_device = len(args.qualities)
    out = Path(args.out)
    if args.section:
        args.epochs = int(os.environ.get("HZ_SCIENCE_EPOCHS", args.epochs or 1))
        return SECTION_FUNCS[args.section](args, out)
    out.mkdir(parents=True, exist_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    build_prebuilt.write_dist_info(gpu_check.META)
    on_gpu = args.device.startswith("cuda")
    extra = {"CUPY_CACHE_DIR": os.environ.get("CUPY_CACHE_DIR", str(gpu_check.KERNEL_CACHE)),
             "HZ_KEEP_KERNEL_CACHE": "1", "HZ_ENV_PEERS": "0", "HZ_REQUIRE_GPU": "1" if on_gpu else "0"}
    if args.data:
        extra["HZ_GPU_DATA"] = str(Path(args.data).resolve())
    env = gw.python_env(ROOT, [gpu_check.META], extra)
    check = [sys.executable, str(TOOLS / "gpu_check.py")]
    mine = [sys.executable, str(Path(__file__).resolve()), *(argv if argv is not None else sys.argv[1:])]
    window = gw.Window(out, "science", args.budget_s, env, cwd=ROOT, meta={
        "timeout_s": TIMEOUT_S, "device": args.device, "model": "A", "recipe": "fast", "qualities": list(args.qualities),
        "trials_per_device": args.trials_per_device, "train_subset": args.train_subset, "test_subset": args.test_subset,
        "data": args.data or str(gpu_check.PACKED), "chosen": None})

    def prepare_sweep(sec: gw.Section, summary: dict) -> str | None:
        left = window.left() - REPORT_RESERVE_S
        if args.epochs is not None:
            chosen = {"epochs": args.epochs, "rule": "given with --epochs (no probe)"}
        else:
            probe = summary["sections"].get("probe", {})
            if probe.get("status") != "ok":
                return "the probe did not pass, so no epoch count could be chosen"
            chosen = choose_epochs(probe["figures"], left, args.max_epochs)
        summary["chosen"] = chosen
        window.save()
        print(f"[science] chosen: {json.dumps(chosen)}", flush=True)
        if chosen["epochs"] < 1:
            return f"not even one epoch fits the {left:.0f} s left (see chosen)"
        sec.cap_s = max(10.0, left)
        sec.env = {"HZ_SCIENCE_EPOCHS": str(chosen["epochs"])}
        return None

    def prepare_report(sec: gw.Section, summary: dict) -> str | None:
        chosen = summary.get("chosen") or {}
        if not chosen.get("epochs"):
            return "no sweep ran"
        if not summary["sections"].get("sweep", {}).get("figures", {}).get("finished_trials"):
            return "the sweep finished no trial"
        sec.env = {"HZ_SCIENCE_EPOCHS": str(chosen["epochs"])}
        return None  # also after a sweep cut short: the trials it finished are reported

    def sweep_digest() -> dict:
        chosen = window.summary.get("chosen") or {}
        if not chosen.get("epochs"):
            return {}
        done = [r for r in trials(WORK / f"sweep-e{chosen['epochs']}" / "results.sqlite") if r["epochs"] == chosen["epochs"]]
        return {"finished_trials": len(done), "predicted_s": chosen.get("predicted_sweep_s")}

    sections = [
        gw.Section("env", CAPS["env"], check + ["--section", "env", "--out", str(out)],
                   stop_unless_ok=lambda e: f"env did not pass ({e.get('reason')}): the science run stopped after env"),
        gw.Section("build", CAPS["build"], check + ["--section", "build", "--out", str(out)], needs=("env",)),
    ]
    if on_gpu:
        sections.append(gw.Section("compile", CAPS["compile"], check + ["--section", "compile", "--out", str(out)], needs=("build",),
                                   stop_unless_ok=lambda e: f"the cuda backend did not pass ({e.get('reason')}): the science run stopped"))
    if args.epochs is None:
        sections.append(gw.Section("probe", CAPS["probe"], mine + ["--section", "probe"], needs=("build",)))
    sections += [
        gw.Section("sweep", CAPS["sweep"], mine + ["--section", "sweep"], needs=("build",), prepare=prepare_sweep, digest=sweep_digest),
        gw.Section("report", CAPS["report"], mine + ["--section", "report"], needs=("build",), prepare=prepare_report, min_s=5.0),
    ]
    rc = window.run(sections)
    chosen = window.summary.get("chosen") or {}
    took = window.summary["sections"].get("sweep", {}).get("seconds")
    if chosen.get("predicted_sweep_s") and took:
        window.summary["chosen"]["sweep_took_s"] = took
        window.save()
    return rc


if __name__ == "__main__":
    sys.exit(main())
