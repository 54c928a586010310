import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tqdm")

from helmholtz.cli import main as cli_main
from helmholtz._ml.curves import convergence_epoch
from helmholtz.experiments import recipes, runners, sweep
from helmholtz.experiments.store import ResultStore

REPO = Path(__file__).resolve().parent.parent
TINY = ["--train-subset", "48", "--test-subset", "24", "--epochs", "1", "--no-progress"]


def run_cli(*argv):
    return cli_main(["sweep", *argv])


def keys(out):
    con = sqlite3.connect(Path(out) / "results.sqlite", timeout=30)
    try:
        return [r[0] for r in con.execute("SELECT key FROM trials")]
    except sqlite3.OperationalError:  # created but its tables not committed yet
        return []
    finally:
        con.close()


def test_convergence_epoch_definition():
    acc = [0.1, 0.5, 0.8, 0.9, 0.9, 0.91, 0.9, 0.9]
    # first i with mean(acc[i:i+10]) > 0.99 * 0.91 = 0.9009 is i = 3 (mean 0.902): epoch 4
    assert convergence_epoch(acc) == 4
    assert convergence_epoch(acc, window=1) == 6  # only 0.91 itself beats 0.9009
    with pytest.raises(ValueError, match="non-empty"):
        convergence_epoch([])
    assert convergence_epoch([0.2] * 5 + [0.8] * 20) == 6  # i=4: mean(0.2, 0.8 x 9) = 0.74 is not enough


def test_plan_validates():
    specs = sweep.plan_trials("cifar10", ["a", "C"], [5, 100], [0, 1], "fast", 2, 10, 5)
    assert len(specs) == 8 and specs[0].model == "A"
    assert len({s.key() for s in specs}) == 8
    with pytest.raises(ValueError, match="quality must be in 1..100"):
        sweep.plan_trials("cifar10", ["A"], [0], [0], "paper", 1)
    with pytest.raises(ValueError, match="name must be one of"):
        sweep.plan_trials("cifar10", ["Z"], [5], [0], "paper", 1)
    with pytest.raises(ValueError, match="dataset must be one of"):
        sweep.plan_trials("imagenet", ["A"], [5], [0], "paper", 1)
    with pytest.raises(ValueError, match="recipe"):
        sweep.plan_trials("cifar10", ["A"], [5], [0], "slow", 1)
    with pytest.raises(ValueError, match="epochs"):
        sweep.plan_trials("cifar10", ["A"], [5], [0], "paper", 0)


def test_recipes():
    model = torch.nn.Linear(3, 2)
    opt, sched = recipes.RECIPES["paper"].make_optimizer(model, 10, 2)
    assert opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.9 and opt.defaults["lr"] == 0.01
    for _ in range(1000):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01 / (1 + 1e-6 * 1000))
    assert recipes.RECIPES["paper"].batch_size == 128 and recipes.RECIPES["paper"].default_epochs == 200
    assert recipes.RECIPES["paper"].shift == 0.1 and recipes.RECIPES["paper"].flip


def test_cli_bad_input_keeps_db(tmp_path, tiny_cifar_dir, capsys):
    out = tmp_path / "out"
    assert run_cli("--data-dir", str(tiny_cifar_dir), "--models", "A", "--qualities", "50", *TINY, "--recipe", "fast", "--out", str(out)) == 0
    before = keys(out)
    assert len(before) == 1
    base = {"--data-dir": str(tiny_cifar_dir), "--models": "A", "--qualities": "50", "--recipe": "fast", "--out": str(out)}
    for change, msg in [
        ({"--models": "Q"}, "name must be one of"),
        ({"--qualities": "101"}, "1..100"),
        ({"--dataset": "nope"}, "dataset must be one of"),
        ({"--bitrates": "32"}, "--bitrates"),
    ]:
        argv = [x for kv in {**base, **change}.items() for x in kv]
        assert run_cli(*argv, *TINY) == 2
        assert msg in capsys.readouterr().err
    # corrupt data: clear error, database untouched
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "cifar10.npz").write_bytes(b"garbage")
    assert run_cli("--data-dir", str(bad), "--models", "A", "--qualities", "10", *TINY, "--out", str(out)) == 2
    assert "not a readable" in capsys.readouterr().err
    assert keys(out) == before


def test_tiny_real_training_trial(tmp_path, data_dir):
    """One real CIFAR-10 trial, end to end, and what it records."""
    out = tmp_path / "out"
    rc = run_cli("--data-dir", str(data_dir), "--models", "A", "--qualities", "20", "--epochs", "2",
                 "--train-subset", "256", "--test-subset", "128", "--recipe", "fast", "--no-progress", "--out", str(out))
    assert rc == 0
    with ResultStore(out, create=False) as s:
        (r,) = s.records()
    assert r["model"] == "A" and r["params"] == 701_386 and r["quality"] == 20 and r["seed"] == 0
    assert len(r["accuracy_curve"]) == 2 and all(0 <= a <= 1 for a in r["accuracy_curve"])
    assert r["test_accuracy"] == r["accuracy_curve"][-1] and r["best_test_accuracy"] == max(r["accuracy_curve"])
    assert 1 <= r["convergence_epoch"] <= 2
    assert r["train_images"] == 256 and r["test_images"] == 128
    assert r["wall_time_s"] > r["train_time_s"] > 0 and r["images_per_s"] > 0
    assert all(np.isfinite(r["loss_curve"]))
    from helmholtz import jpeg

    assert (r["bpp"] is None) == (not hasattr(jpeg, "bits_many"))


def test_rerun_skips_and_seeds_differ(tmp_path, tiny_cifar_dir, capsys):
    out = tmp_path / "out"
    argv = ["--data-dir", str(tiny_cifar_dir), "--models", "A", "--qualities", "10,90", "--seeds", "0,1", *TINY, "--recipe", "fast", "--out", str(out)]
    assert run_cli(*argv) == 0
    first = ResultStore(out).records()
    assert len(first) == 4
    assert run_cli(*argv) == 0
    assert "4 of 4 trials already finished" in capsys.readouterr().err
    assert ResultStore(out).records() == first
    by_key = {r["key"]: r for r in first}
    a, b = (by_key[k]["loss_curve"][0] for k in sorted(by_key) if "q=10|" in k)
    assert a != b  # different seeds train differently


def test_trial_runner_registry_dispatch(tmp_path, tiny_cifar_dir, monkeypatch):
    """A data set of another kind runs through its own registered runner (how audio plugs in)."""
    from helmholtz import data

    calls = []

    def compress(ds, levels, device):
        calls.append(("compress", tuple(levels)))
        return {lv: (ds.x_train, ds.x_test) for lv in levels}

    def rate(ds, levels):
        return {lv: {"bits_per_second": lv * 1000.0} for lv in levels}

    def train(spec, ds, xtr, xte, device, progress):
        return {"params": 1, "test_accuracy": 0.25, "best_test_accuracy": 0.5, "convergence_epoch": 1, "accuracy_curve": [0.5, 0.25], "images_per_s": 1.0, "train_time_s": 0.1}

    global FAKE_RUNNER, FAKE_SPEC
    FAKE_RUNNER = runners.TrialRunner(lambda m: m, float, compress, rate, train, level="bitrate")
    FAKE_SPEC = data.DatasetSpec("fake", lambda d, **k: data.load_cifar10(d), kind="fake-audio", level="bitrate")
    runners.RUNNERS.register("fake-audio", f"{__name__}:FAKE_RUNNER")
    data.register_dataset("fake", f"{__name__}:FAKE_SPEC")
    from helmholtz._data.registry import DATASETS

    monkeypatch.setattr(runners.RUNNERS, "unregister", runners.RUNNERS.unregister)  # restored below
    out = tmp_path / "out"
    assert run_cli("--dataset", "fake", "--data-dir", str(tiny_cifar_dir), "--models", "m1", "--bitrates", "8,32", "--no-progress", "--epochs", "2", "--out", str(out)) == 0
    recs = ResultStore(out).records()
    assert sorted((r["bitrate"], r["bits_per_second"], r["quality"]) for r in recs) == [(8.0, 8000.0, None), (32.0, 32000.0, None)]
    assert calls == [("compress", (8.0, 32.0))]
    runners.RUNNERS.unregister("fake-audio")
    DATASETS.unregister("fake")


SWEEP_SCRIPT = "import sys; from helmholtz.cli import main; sys.exit(main(['sweep', *sys.argv[1:]]))"


def test_resume_after_sigkill(tmp_path, tiny_cifar_dir):
    out = tmp_path / "out"
    argv = [sys.executable, "-c", SWEEP_SCRIPT, "--data-dir", str(tiny_cifar_dir), "--models", "A", "--qualities", "5,100",
            "--seeds", "0,1", "--train-subset", "64", "--test-subset", "32", "--epochs", "1", "--recipe", "fast", "--no-progress", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    db = out / "results.sqlite"
    deadline = time.monotonic() + 120
    # kill -9 once at least one trial (but not all four) is in the database
    while time.monotonic() < deadline and proc.poll() is None:
        if db.is_file() and 1 <= len(keys(out)) < 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    partial = keys(out)
    assert 1 <= len(partial) < 4
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    final = keys(out)
    assert len(final) == len(set(final)) == 4
    assert set(partial) <= set(final)
    assert f"{len(partial)} of 4 trials already finished" in done.stderr


def test_ctrl_c_stops_cleanly(tmp_path, tiny_cifar_dir):
    out = tmp_path / "out"
    argv = [sys.executable, "-c", SWEEP_SCRIPT, "--data-dir", str(tiny_cifar_dir), "--models", "A", "--qualities", "5,50",
            "--train-subset", "64", "--test-subset", "32", "--epochs", "50", "--recipe", "fast", "--no-progress", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "results.sqlite").is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(3)  # loading data or inside the first (50-epoch) trial
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert ResultStore(out).records() == []  # the unfinished trial is not recorded


@pytest.mark.parametrize("total", [1, 2, 4, 1000])
def test_fast_schedule_any_length(total):
    model = torch.nn.Linear(3, 2)
    opt, sched = recipes.RECIPES["fast"].make_optimizer(model, total, 1)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert max(lrs) <= 2e-3 + 1e-12 and min(lrs) > 0
    if total >= 4:
        peak = int(np.argmax(lrs))
        assert 0 < peak < total - 1 and lrs[-1] < lrs[peak] / (5 if total >= 100 else 1)


def test_bpp_filled_once_bits_can_be_counted(tmp_path, tiny_cifar_dir, monkeypatch):
    from helmholtz import jpeg

    out = tmp_path / "out"
    argv = ["--data-dir", str(tiny_cifar_dir), "--models", "A", "--qualities", "10,90", *TINY, "--recipe", "fast", "--out", str(out)]
    monkeypatch.delattr(jpeg, "bits_many", raising=False)
    assert run_cli(*argv) == 0
    assert [r["bpp"] for r in ResultStore(out).records()] == [None, None]

    def bits_many(images, qualities, subsampling="4:2:0"):  # stand-in: 7 bits per unit of quality per image
        images = np.asarray(images)
        return np.array([[7 * q] * len(images) for q in qualities], dtype=np.int64)

    monkeypatch.setattr(jpeg, "bits_many", bits_many, raising=False)
    assert run_cli(*argv) == 0
    recs = {r["quality"]: r for r in ResultStore(out).records()}
    assert len(recs) == 2
    # 48 training images of 32x32 pixels
    assert recs[10]["bpp"] == pytest.approx(48 * 70 / (48 * 1024))
    assert recs[90]["bpp"] == pytest.approx(48 * 630 / (48 * 1024))
