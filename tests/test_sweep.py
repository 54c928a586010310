"""``helmholtz sweep`` end to end: planning, resuming, packing, sharing an output folder, keeping results, fingerprints."""

import os
import re
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

from helmholtz import jpeg  # noqa: E402
from helmholtz.cli import main as cli_main  # noqa: E402
from helmholtz.experiments import recipes, runners, sweep  # noqa: E402
from helmholtz.experiments import store as store_module  # noqa: E402
from helmholtz.experiments.fingerprint import array_sha256  # noqa: E402
from helmholtz.experiments.store import PENDING_DIR, ResultStore  # noqa: E402
from helmholtz.experiments.trial import load_weights  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TINY = ["--train-subset", "48", "--test-subset", "24", "--epochs", "1", "--no-progress"]
SWEEP_SCRIPT = "import sys; from helmholtz.cli import main; sys.exit(main(['sweep', *sys.argv[1:]]))"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1",
       "HELMHOLTZ_HEARTBEAT_S": "0.5", "HELMHOLTZ_POLL_S": "0.2"}


def run_cli(*argv):
    return cli_main(["sweep", *argv])


def keys(out):
    db = Path(out) / "results.sqlite"
    if not db.is_file():
        return []
    con = sqlite3.connect(db, timeout=30)
    try:
        return [r[0] for r in con.execute("SELECT key FROM trials")]
    finally:
        con.close()


def tiny_argv(data, out, qualities="10,90", seeds="0", *more):
    return ["--data-dir", str(data), "--models", "A", "--qualities", qualities, "--seeds", seeds, *TINY, "--recipe", "fast", "--out", str(out), *more]


# ------------------------------------------------------------------ planning and recipes
def test_plan_validates_every_axis():
    specs = sweep.plan_trials("cifar10", ["a", "C"], [5, 100], [0, 1], "fast", 2, 10, 5)
    assert len(specs) == 8 and specs[0].model == "A"
    assert len({s.key() for s in specs}) == 8
    with pytest.raises(ValueError, match="quality must be in 1..100"):
        sweep.plan_trials("cifar10", ["A"], [0], [0], "paper", 1)
    with pytest.raises(ValueError, match="name must be one of"):
        sweep.plan_trials("cifar10", ["Z"], [5], [0], "paper", 1)
    with pytest.raises(ValueError, match="dataset must be one of"):
        sweep.plan_trials("imagenet1k", ["A"], [5], [0], "paper", 1)
    with pytest.raises(ValueError, match="recipe"):
        sweep.plan_trials("cifar10", ["A"], [5], [0], "slow", 1)
    with pytest.raises(ValueError, match="epochs"):
        sweep.plan_trials("cifar10", ["A"], [5], [0], "paper", 0)
    with pytest.raises(ValueError, match="train_subset"):
        sweep.plan_trials("cifar10", ["A"], [5], [0], "paper", 1, 0)


def test_paper_recipe_is_the_authors_sgd():
    model = torch.nn.Linear(3, 2)
    opt, sched = recipes.RECIPES["paper"].make_optimizer(model, 10, 2)
    assert opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.9 and opt.defaults["lr"] == 0.01
    for _ in range(1000):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01 / (1 + 1e-6 * 1000))
    assert recipes.RECIPES["paper"].batch_size == 128 and recipes.RECIPES["paper"].default_epochs == 200
    assert recipes.RECIPES["paper"].shift == 0.1 and recipes.RECIPES["paper"].flip


@pytest.mark.parametrize("total", [1, 2, 4, 1000])
def test_fast_schedule_works_for_any_length(total):
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


# ------------------------------------------------------------------ the CLI's errors
def test_bad_input_is_refused_and_the_database_kept(tmp_path, tiny_cifar_dir, capsys):
    out = tmp_path / "out"
    assert run_cli(*tiny_argv(tiny_cifar_dir, out, "50")) == 0
    before = keys(out)
    assert len(before) == 1
    base = {"--data-dir": str(tiny_cifar_dir), "--models": "A", "--qualities": "50", "--recipe": "fast", "--out": str(out)}
    for change, msg in [
        ({"--models": "Q"}, "--models must be one of"),
        ({"--qualities": "101"}, "1..100"),
        ({"--dataset": "nope"}, "--dataset must be one of"),
        ({"--bitrates": "32"}, "--bitrates"),
        ({"--trials-per-device": "0"}, "--trials-per-device must be"),
        ({"--device": "tpu"}, "--device must be"),
    ]:
        argv = [x for kv in {**base, **change}.items() for x in kv]
        assert run_cli(*argv, *TINY) == 2
        assert msg in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "cifar10.npz").write_bytes(b"garbage")
    assert run_cli(*tiny_argv(bad, out, "10")) == 2
    assert "cifar10.npz" in capsys.readouterr().err
    assert keys(out) == before


def test_a_foreign_file_at_out_is_refused_unchanged(tmp_path, tiny_cifar_dir, capsys):
    out = tmp_path / "out"
    out.mkdir()
    con = sqlite3.connect(out / "results.sqlite")
    con.execute("CREATE TABLE payroll (name, salary)")
    con.commit()
    con.close()
    before = (out / "results.sqlite").read_bytes()
    assert run_cli(*tiny_argv(tiny_cifar_dir, out, "50")) == 2
    assert "another program" in capsys.readouterr().err
    assert (out / "results.sqlite").read_bytes() == before and sorted(p.name for p in out.iterdir()) == ["results.sqlite"]


def test_a_sweep_that_fails_validation_creates_nothing(tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "cifar10.npz").write_bytes(b"garbage")
    out = tmp_path / "out"
    assert run_cli(*tiny_argv(bad, out, "10")) == 2
    assert not out.exists()


# ------------------------------------------------------------------ a real trial
def test_a_real_cifar_trial_records_curves_rates_fingerprints_and_weights(tmp_path, data_dir):
    out = tmp_path / "out"
    rc = run_cli("--data-dir", str(data_dir), "--models", "A", "--qualities", "20", "--epochs", "2",
                 "--train-subset", "256", "--test-subset", "128", "--recipe", "fast", "--no-progress", "--out", str(out))
    assert rc == 0
    with ResultStore(out, readonly=True) as s:
        (r,) = s.records()
    assert r["model"] == "A" and r["params"] == 701_386 and r["quality"] == 20 and r["seed"] == 0
    assert len(r["accuracy_curve"]) == 2 and all(0 <= a <= 1 for a in r["accuracy_curve"])
    assert r["test_accuracy"] == r["accuracy_curve"][-1] and r["best_test_accuracy"] == max(r["accuracy_curve"])
    assert r["convergence_epoch"] in (None, 1, 2)
    assert r["train_images"] == 256 and r["test_images"] == 128
    assert r["wall_time_s"] > r["train_time_s"] > 0 and r["images_per_s"] > 0
    assert all(np.isfinite(r["loss_curve"]))
    assert 0.5 < r["bpp"] < 1.5  # near 1 bit per pixel at q=20, the paper's sweet spot
    state = load_weights(out, r)
    model = __import__("helmholtz.models", fromlist=["cifar_model"]).cifar_model("A")
    model.load_state_dict(state)


def test_rerun_skips_finished_trials_and_seeds_differ(tmp_path, tiny_cifar_dir, capsys):
    out = tmp_path / "out"
    argv = tiny_argv(tiny_cifar_dir, out, "10,90", "0,1")
    assert run_cli(*argv) == 0
    first = ResultStore(out, readonly=True).records()
    assert len(first) == 4
    assert run_cli(*argv) == 0
    assert "4 of 4 trials already finished" in capsys.readouterr().err
    assert ResultStore(out, readonly=True).records() == first
    by_key = {r["key"]: r for r in first}
    a, b = (by_key[k]["loss_curve"][0] for k in sorted(by_key) if "q=10|" in k)
    assert a != b  # different seeds train differently


# ------------------------------------------------------------------ fingerprints
def test_every_row_records_the_data_and_code_it_came_from(tmp_path, tiny_cifar_dir):
    out = tmp_path / "out"
    assert run_cli(*tiny_argv(tiny_cifar_dir, out, "30")) == 0
    (r,) = ResultStore(out, readonly=True).records()
    with np.load(tiny_cifar_dir / "cifar10.npz") as z:
        x_tr, y_tr, x_te, y_te = z["x_train"], z["y_train"].astype(np.int64), z["x_test"], z["y_test"].astype(np.int64)
    from helmholtz.data import subset_indices

    tr, te = subset_indices(len(y_tr), 48), subset_indices(len(y_te), 24)
    assert r["source_sha256"] == array_sha256([x_tr[tr], y_tr[tr], x_te[te], y_te[te]])
    assert r["data_sha256"] == array_sha256([jpeg.roundtrip(x_tr[tr], 30), y_tr[tr], jpeg.roundtrip(x_te[te], 30), y_te[te]])
    import PIL

    assert r["helmholtz_version"] and r["torch_version"] == torch.__version__ and r["numpy_version"] == np.__version__
    assert r["pillow_version"] == PIL.__version__ and r["libjpeg_turbo_version"] and r["python_version"]
    assert r["git_revision"] is None or re.fullmatch(r"[0-9a-f]{40}(-dirty)?", r["git_revision"])
    assert r["recipe_json"]["name"] == "fast" and r["recipe_json"]["batch_size"] == 64 and r["recipe_json"]["compile"] is False
    assert r["device"].startswith("cpu") and r["host"]


def test_changed_data_under_the_same_name_is_refused_on_resume(tmp_path, tiny_cifar_dir, capsys):
    out = tmp_path / "out"
    assert run_cli(*tiny_argv(tiny_cifar_dir, out, "30")) == 0
    before = (out / "results.sqlite").read_bytes()
    with np.load(tiny_cifar_dir / "cifar10.npz") as z:
        arrays = dict(z)
    arrays["x_train"] = 255 - arrays["x_train"]  # the same name, other pixels
    np.savez(tiny_cifar_dir / "cifar10.npz", **arrays)
    assert run_cli(*tiny_argv(tiny_cifar_dir, out, "30,60")) == 2
    err = capsys.readouterr().err
    assert "is not what the finished trials" in err and "start a new --out" in err
    assert (out / "results.sqlite").read_bytes() == before


# ------------------------------------------------------------------ plugins
FAKE_RUNNER = None
FAKE_SPEC = None


@pytest.fixture
def fake_kind(monkeypatch):
    """A data set of a kind of its own, registered by 'module:attr' strings as a third-party plugin would."""
    from helmholtz import data
    from helmholtz._data.registry import DATASETS

    global FAKE_RUNNER, FAKE_SPEC
    calls = []

    def prepare(ds, level, options):
        calls.append(("prepare", level))
        return runners.Prepared(train=ds.x_train, test=ds.x_test, rate={"bits_per_second": level * 1000.0}, data_sha256="0" * 64)

    def train(spec, ds, prepared, options):
        return {"params": 1, "test_accuracy": 0.25, "best_test_accuracy": 0.5, "convergence_epoch": 1, "accuracy_curve": [0.5, 0.25],
                "images_per_s": 1.0, "train_time_s": 0.1, "custom_metric": 7}

    FAKE_RUNNER = runners.TrialRunner("bitrate", lambda m: m, float, prepare, train, lambda spec, ds: {"name": "fake"})
    FAKE_SPEC = data.DatasetSpec("fake", lambda d, **k: data.load_cifar10(d), kind="fake-audio", level="bitrate")
    runners.register_runner("fake-audio", f"{__name__}:FAKE_RUNNER")
    data.register_dataset("fake", f"{__name__}:FAKE_SPEC")
    yield calls
    runners.RUNNERS.unregister("fake-audio")
    DATASETS.unregister("fake")


def test_a_registered_runner_trains_a_new_kind_of_data_set(tmp_path, tiny_cifar_dir, fake_kind):
    out = tmp_path / "out"
    assert run_cli("--dataset", "fake", "--data-dir", str(tiny_cifar_dir), "--models", "m1", "--bitrates", "8,32", "--no-progress", "--epochs", "2", "--out", str(out)) == 0
    recs = ResultStore(out, readonly=True).records()
    assert sorted((r["bitrate"], r["bits_per_second"], r["quality"]) for r in recs) == [(8.0, 8000.0, None), (32.0, 32000.0, None)]
    assert fake_kind == [("prepare", 8.0), ("prepare", 32.0)]
    assert all(r["extra"] == {"custom_metric": 7} for r in recs)  # columns the store does not know go to extra


# ------------------------------------------------------------------ killed, interrupted, resumed
def test_rerun_after_kill_trains_nothing_twice(tmp_path, tiny_cifar_dir):
    out = tmp_path / "out"
    argv = [sys.executable, "-c", SWEEP_SCRIPT, *tiny_argv(tiny_cifar_dir, out, "5,100", "0,1")]
    proc = subprocess.Popen(argv, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:  # kill -9 once some (not all) trials are stored
        if 1 <= len(keys(out)) < 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = keys(out)
    assert 1 <= len(partial) < 4
    done = subprocess.run(argv, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    final = keys(out)
    assert len(final) == len(set(final)) == 4 and set(partial) <= set(final)
    assert f"{len(partial)} of 4 trials already finished" in done.stderr
    assert f"{4 - len(partial)} trial(s) run" in done.stdout  # the killed trial's stale lease was taken over at once


def test_ctrl_c_stops_cleanly_and_records_nothing_half_done(tmp_path, tiny_cifar_dir):
    out = tmp_path / "out"
    argv = [sys.executable, "-c", SWEEP_SCRIPT, "--data-dir", str(tiny_cifar_dir), "--models", "A", "--qualities", "5,50",
            "--train-subset", "64", "--test-subset", "32", "--epochs", "50", "--recipe", "fast", "--no-progress", "--out", str(out)]
    proc = subprocess.Popen(argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "results.sqlite").is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(3)  # inside the first (50-epoch) trial
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    with ResultStore(out, readonly=True) as s:
        assert s.records() == [] and s.leases() == []  # nothing half-done, and the trial was given back


# ------------------------------------------------------------------ packed trials and shared output folders
def test_packed_trials_run_in_worker_processes_and_train_each_trial_once(tmp_path, tiny_cifar_dir, capsys):
    out = tmp_path / "out"
    assert run_cli(*tiny_argv(tiny_cifar_dir, out, "10,50,90", "0,1"), "--trials-per-device", "2") == 0
    captured = capsys.readouterr()
    assert "6 trial(s) run, 0 already done, of 6" in captured.out
    recs = ResultStore(out, readonly=True).records()
    assert len(recs) == len({r["key"] for r in recs}) == 6
    owners = {r["owner"].split(":")[1] for r in recs}  # host:pid:id
    assert len(owners) == 2 and str(os.getpid()) not in owners  # two worker processes, not this one
    assert len(list((out / "models").glob("*.pt"))) == 6


def test_concurrent_sweeps_on_one_out_train_each_trial_once(tmp_path, tiny_cifar_dir):
    out = tmp_path / "out"
    argv = [sys.executable, "-c", SWEEP_SCRIPT, *tiny_argv(tiny_cifar_dir, out, "10,40,70,95", "0")]
    procs = [subprocess.Popen(argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    ran = [int(re.search(r"(\d+) trial\(s\) run", o[0]).group(1)) for o in outs]
    assert sum(ran) == 4  # every trial trained exactly once between the two
    final = keys(out)
    assert len(final) == len(set(final)) == 4


# ------------------------------------------------------------------ nothing finished is lost
def test_a_finished_trial_survives_a_failed_write_and_is_recorded_by_the_next_run(tmp_path, tiny_cifar_dir, monkeypatch, capsys):
    out = tmp_path / "out"
    real_add = store_module.ResultStore.add

    def full_disk(self, record, owner=None):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store_module.ResultStore, "add", full_disk)
    assert run_cli(*tiny_argv(tiny_cifar_dir, out, "30")) == 1
    err = capsys.readouterr().err
    assert f"{out / PENDING_DIR}" in err and "the next run records it" in err
    assert keys(out) == [] and len(list((out / PENDING_DIR).glob("*.json"))) == 1
    monkeypatch.setattr(store_module.ResultStore, "add", real_add)
    assert run_cli(*tiny_argv(tiny_cifar_dir, out, "30")) == 0
    captured = capsys.readouterr()
    assert "0 trial(s) run, 1 already done, 1 recovered" in captured.out  # recorded without training again
    assert len(keys(out)) == 1 and not (out / PENDING_DIR).exists()


# ------------------------------------------------------------------ image folders of mixed sizes
def _mixed_folder(root):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 3)):
        for cls in ("cats", "dogs"):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                h, w = (20 + 4 * i, 24 + 2 * i)
                Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / split / cls / f"{i}.png")
    return root


def test_a_folder_of_mixed_sizes_needs_image_size_and_trains_with_it(tmp_path, capsys):
    folder = _mixed_folder(tmp_path / "imgs")
    out = tmp_path / "out"
    base = ["--dataset", "folder", "--data-dir", str(folder), "--models", "A", "--qualities", "50", "--epochs", "1", "--recipe", "fast",
            "--no-progress", "--out", str(out)]
    assert run_cli(*base) == 2
    assert "pass --image-size HxW" in capsys.readouterr().err and not out.exists()
    assert run_cli(*base, "--image-size", "32x32") == 0
    (r,) = ResultStore(out, readonly=True).records()
    assert r["image_size"] == "32x32" and r["key"].endswith("|size=32x32") and r["pixels_per_image"] == 1024
    assert run_cli("--dataset", "cifar10", "--data-dir", str(tmp_path), "--models", "A", "--qualities", "50", "--image-size", "32x32", "--out", str(out)) == 2
    assert "--image-size applies to image folders" in capsys.readouterr().err


def test_a_trial_whose_weights_cannot_be_saved_is_kept_whole_and_recorded_with_them_next_time(tmp_path, tiny_cifar_dir, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "models").write_text("a file where the weights folder would go")  # every weights write fails with an OSError
    assert run_cli(*tiny_argv(tiny_cifar_dir, out, "30")) == 1
    err = capsys.readouterr().err
    assert "the next run records it" in err and "without its weights" not in err
    (kept,) = (out / PENDING_DIR).glob("*.json")
    assert keys(out) == [] and len(list((out / PENDING_DIR).glob("*.weights"))) == 1  # the weights wait beside the record
    (out / "models").unlink()
    assert run_cli(*tiny_argv(tiny_cifar_dir, out, "30")) == 0
    assert "0 trial(s) run, 1 already done, 1 recovered" in capsys.readouterr().out  # recorded without training again
    (r,) = ResultStore(out, readonly=True).records()
    assert r["weights"].startswith("models/") and load_weights(out, r)  # the weights went to their place, SHA-256 checked
    assert not (out / PENDING_DIR).exists() and not list(out.rglob("*.tmp"))


# ------------------------------------------------------------------ one rule for every coercion (the Python API)
def test_plan_refuses_a_repeated_model_level_or_seed_naming_it():
    for args, msg in [
        ((["A"], [20, 20], [0]), "levels repeats quality 20; give each once"),
        ((["A"], [20, np.int64(20)], [0]), "levels repeats quality 20"),
        ((["A", "a"], [20], [0]), "models repeats model 'A' (given as 'A' and 'a')"),
        ((["A"], [20], [0, 0]), "seeds repeats seed 0"),
    ]:
        with pytest.raises(ValueError, match=re.escape(msg)):
            sweep.plan_trials("cifar10", *args, "fast", 1)


def test_plan_refuses_repeated_bitrates_naming_them():
    pytest.importorskip("lameenc")
    with pytest.raises(ValueError, match=re.escape("levels repeats bitrate 8; give each once")):
        sweep.plan_trials("fsdd", ["conv3"], [8, 8.0], [0], "fast", 1)


def test_a_bool_is_never_a_number_in_the_python_api(tmp_path):
    for kwargs, msg in [({"seeds": [True]}, "seeds must be ints"), ({"epochs": True}, "epochs must be an int"),
                        ({"train_subset": True}, "train_subset must be an int"), ({"levels": [True]}, "quality must be an int")]:
        args = {"models": ["A"], "levels": [20], "seeds": [0], "epochs": 1, **kwargs}
        with pytest.raises((TypeError, ValueError), match=msg):
            sweep.plan_trials("cifar10", args["models"], args["levels"], args["seeds"], "fast", args["epochs"], args.get("train_subset"))
    with pytest.raises(TypeError, match="seeds must be a sequence"):
        sweep.plan_trials("cifar10", ["A"], [20], 0, "fast", 1)
    specs = sweep.plan_trials("cifar10", ["A"], [20], [0], "fast", 1)
    for kwargs, msg in [({"trials_per_device": True}, "trials_per_device must be an int"), ({"compile": 1}, "compile must be True or False"),
                        ({"executor": "ray", "ray_num_cpus": True}, "ray_num_cpus must be an int"), ({"progress": 1}, "progress must be")]:
        with pytest.raises((TypeError, ValueError), match=msg):
            sweep.run_sweep(specs, tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("seed", [2**63, 2**64])
def test_seeds_beyond_64_bits_are_refused_before_anything_is_created(tmp_path, tiny_cifar_dir, seed):
    with pytest.raises(ValueError, match=re.escape("seeds must be ints in 0..2**63-1")):
        sweep.plan_trials("cifar10", ["A"], [20], [seed], "fast", 1)
    spec = sweep.TrialSpec("cifar10", "A", 20, seed=seed, recipe="fast", epochs=1, train_subset=16, test_subset=8)
    with pytest.raises(ValueError, match=re.escape("specs[0].seed must be ints in 0..2**63-1")):
        sweep.run_sweep([spec], tmp_path / "out", data_dir=str(tiny_cifar_dir), progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("out, error, msg", [
    ("", ValueError, "out must name a folder"),
    ("out-\udcff", ValueError, "out must be valid UTF-8"),
    ("file", ValueError, "is an existing file"),
    ("x" * 300, ValueError, "name of 300 bytes"),
    (7, TypeError, "out must be a path"),
], ids=["empty", "not-utf8", "existing-file", "too-long", "not-a-path"])
def test_run_sweep_refuses_an_output_folder_it_may_not_create_before_anything_is_created(tmp_path, tiny_cifar_dir, monkeypatch, out, error, msg):
    work = tmp_path / "work"
    work.mkdir()
    (work / "file").write_text("mine")
    monkeypatch.chdir(work)
    specs = sweep.plan_trials("cifar10", ["A"], [20], [0], "fast", 1, 16, 8)
    with pytest.raises(error, match=msg):
        sweep.run_sweep(specs, out, data_dir=str(tiny_cifar_dir), progress=False)
    assert sorted(p.name for p in work.iterdir()) == ["file"] and (work / "file").read_text() == "mine"


def test_run_sweep_refuses_the_root_folder_as_output(tiny_cifar_dir):
    specs = sweep.plan_trials("cifar10", ["A"], [20], [0], "fast", 1, 16, 8)
    existed = Path("/results.sqlite").exists()
    with pytest.raises(ValueError, match="not the root folder"):
        sweep.run_sweep(specs, "/", data_dir=str(tiny_cifar_dir), progress=False)
    assert Path("/results.sqlite").exists() == existed


def test_ray_only_arguments_with_the_local_executor_are_refused(tmp_path):
    specs = sweep.plan_trials("cifar10", ["A"], [20], [0], "fast", 1)
    for kwargs, msg in [({"ray_num_cpus": 2}, "ray_num_cpus applies only to executor='ray'"),
                        ({"ray_address": "auto"}, "ray_address applies only to executor='ray'"),
                        ({"ray_num_cpus": 0}, "ray_num_cpus must be an int >= 1"),
                        ({"executor": "ray", "trials_per_device": 2}, "needs device='cuda'")]:
        with pytest.raises(ValueError, match=re.escape(msg)):
            sweep.run_sweep(specs, tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_worker_count_is_capped_by_cores_devices_and_trials():
    from helmholtz.experiments.local import worker_count

    assert worker_count(1000, 1, 2, 1) == 1 and worker_count(1000, 1, 2, 50) == 2 and worker_count(2, 4, 16, 50) == 8
    assert worker_count(4, 2, 6, 50) == 6 and worker_count(1, 1, 1, 0) == 1


def test_trials_per_device_beyond_the_trials_runs_one_worker_and_says_so(tmp_path, tiny_cifar_dir):
    lines = []
    specs = sweep.plan_trials("cifar10", ["A"], [20], [0], "fast", 1, 48, 24)
    result = sweep.run_sweep(specs, tmp_path / "out", data_dir=str(tiny_cifar_dir), trials_per_device=3, progress=False, log=lines.append)
    assert result.ran == 1 and result.error is None
    assert any("trials_per_device=3 asks for 3 worker(s); running 1" in line for line in lines), lines
    (r,) = ResultStore(tmp_path / "out", readonly=True).records()
    assert r["owner"].split(":")[1] == str(os.getpid())  # trained in this process: no worker processes were spawned for one trial
