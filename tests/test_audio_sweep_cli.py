"""``helmholtz sweep`` / ``helmholtz report`` on audio data sets (FSDD, audio folders), end to end."""

import csv
import io
import os
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tqdm")

from helmholtz.cli import main as cli_main
from helmholtz.experiments import report, sweep
from helmholtz.experiments.store import ResultStore

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def fsdd_dir(fsdd_path):
    pytest.importorskip("lameenc")
    return fsdd_path.parent


def _argv(data_dir, out, bitrates="8,32", *more):
    return ["--dataset", "fsdd", "--data-dir", str(data_dir), "--models", "conv3", "--bitrates", bitrates, "--epochs", "1",
            "--seeds", "0", "--train-subset", "100", "--test-subset", "50", "--recipe", "fast", "--no-progress", "--out", str(out), *more]


def test_the_cli_finds_audio_data_sets_by_entry_point_without_importing_torch():
    code = (
        "import sys, helmholtz, helmholtz.cli, helmholtz.data as d\n"
        "from helmholtz.experiments.runners import runner_for\n"
        "helmholtz.cli.build_parser()\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert d.get_spec('fsdd').kind == 'audio' and runner_for('audio-folder').level == 'bitrate'\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_plan_audio_levels_and_pcm():
    specs = sweep.plan_trials("fsdd", ["conv3", "2"], ["pcm", 16.0], [0], "paper", 3, 100, 50)
    assert [(s.model, s.bitrate, s.quality) for s in specs] == [
        ("conv3", None, None), ("conv3", 16.0, None), ("conv4-dense128", None, None), ("conv4-dense128", 16.0, None),
    ]
    assert specs[0].key() == "fsdd|conv3|pcm|seed=0|paper|epochs=3|train=100|test=50"
    assert specs[1].key() == "fsdd|conv3|kbps=16|seed=0|paper|epochs=3|train=100|test=50"
    assert specs[0].label() == "conv3 pcm seed=0" and specs[1].label() == "conv3 16 kbps seed=0"
    with pytest.raises(ValueError, match="MPEG Layer III bitrate"):
        sweep.plan_trials("fsdd", ["conv3"], [10], [0], "paper", 1)
    # a model or level given twice, under any of its names, is an error naming it (never dropped silently)
    with pytest.raises(ValueError, match=r"models repeats model 'conv3' \(given as 'conv3' and 'A'\)"):
        sweep.plan_trials("fsdd", ["conv3", "A"], [16], [0], "paper", 1)
    with pytest.raises(ValueError, match=r"levels repeats bitrate None \(given as 'pcm' and None\)"):
        sweep.plan_trials("fsdd", ["conv3"], ["pcm", None], [0], "paper", 1)
    with pytest.raises(ValueError, match=r"levels repeats bitrate 16; give each once"):
        sweep.plan_trials("fsdd", ["conv3"], [16, 16.0], [0], "paper", 1)
    with pytest.raises(ValueError, match="name must be one of conv3"):
        sweep.plan_trials("fsdd", ["conv9"], [16], [0], "paper", 1)


def test_cli_bad_audio_input(tmp_path, fsdd_dir, capsys):
    out = tmp_path / "out"
    for argv, msg in [
        ([*_argv(fsdd_dir, out), "--qualities", "50"], "--qualities applies to image data sets"),
        (_argv(fsdd_dir, out, "10"), "--bitrates must be an MPEG Layer III bitrate"),
        ([*_argv(fsdd_dir, out), "--models", "conv9"], "--models must be one of conv3"),
        ([a for a in _argv(fsdd_dir, out) if a not in ("--bitrates", "8,32")], "fsdd needs --bitrates"),
        (["--dataset", "cifar10", "--data-dir", str(fsdd_dir), "--bitrates", "32", "--out", str(out)], "--bitrates applies to audio data sets"),
        (["--dataset", "cifar10", "--data-dir", str(fsdd_dir), "--bitrates", "pcm", "--out", str(out)], "--bitrates applies to audio data sets"),
    ]:
        assert cli_main(["sweep", *argv]) == 2, argv
        assert msg in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["sweep", *_argv(fsdd_dir, out, "8,fast")])
    assert "comma-separated bitrates" in capsys.readouterr().err
    assert not (out / "results.sqlite").exists()


def _write_wav(path, rate, x):
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(x, dtype="<i2").tobytes())


def test_bitrate_unsupported_at_sample_rate(tmp_path, capsys):
    """144 kbps exists in MPEG-2 only: no MPEG rate LAME reaches from 44.1 kHz carries it. Refused before any coding or training."""
    pytest.importorskip("miniaudio")
    pytest.importorskip("lameenc")
    from helmholtz.audio import supported_bitrates

    assert 144 not in supported_bitrates(44100) and 144 in supported_bitrates(8000)
    rng = np.random.default_rng(0)
    for label in ("hum", "hiss"):
        for i in range(3):
            _write_wav(tmp_path / "data" / label / f"{i}.wav", 44100, rng.normal(0, 2000, 4410))
    out = tmp_path / "out"
    argv = ["--dataset", "audio-folder", "--data-dir", str(tmp_path / "data"), "--models", "conv3", "--bitrates", "32,144",
            "--epochs", "1", "--no-progress", "--out", str(out)]
    t0 = time.perf_counter()
    assert cli_main(["sweep", *argv]) == 2
    err = capsys.readouterr().err
    assert "bitrate 144 kbps is not available for 44100 Hz" in err and "audio-folder" in err
    assert time.perf_counter() - t0 < 20
    assert not out.exists()  # refused before anything was written


def test_tiny_fsdd_sweep_report_and_resume(tmp_path, fsdd_dir, capsys):
    """A real FSDD sweep through the CLI (MP3 at 8 and 32 kbps, 1 epoch), its report, and a resume."""
    out = tmp_path / "out"
    assert cli_main(["sweep", *_argv(fsdd_dir, out)]) == 0
    assert "2 trial(s) run, 0 already done, of 2" in capsys.readouterr().out
    recs = {r["bitrate"]: r for r in ResultStore(out, readonly=True).records()}
    assert sorted(recs) == [8.0, 32.0]
    for br, r in recs.items():
        assert r["dataset"] == "fsdd" and r["model"] == "conv3" and r["quality"] is None and r["bpp"] is None
        assert r["train_images"] == 100 and r["test_images"] == 50 and r["params"] > 0 and r["recipe"] == "fast"
        # exact MP3 bits: above the nominal rate (whole frames, codec delay per short clip), below twice it
        assert br * 1000 < r["bits_per_second"] < 2 * br * 1000
        assert len(r["accuracy_curve"]) == 1 and 0 <= r["test_accuracy"] <= 1
        assert r["extra"]["accuracy_top10"] == r["test_accuracy"] and r["extra"]["codec_sample_rate"] == 8000
        assert r["extra"]["optimizer"] == "adam" and r["extra"]["input_shape"] == [1, 96, 126]

    assert cli_main(["report", *[str(out), "--format", "csv"]]) == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert len(rows) == 2
    for col in ("model", "params", "bitrate", "seed", "bits_per_second", "test_accuracy", "accuracy_top10"):
        assert col in rows[0], col
    assert [float(r["bitrate"]) for r in rows] == [8.0, 32.0]
    assert float(rows[0]["bits_per_second"]) < float(rows[1]["bits_per_second"])
    for name in ("accuracy_vs_bitrate.png", "accuracy_vs_bits_per_second.png", "convergence_vs_bitrate.png"):
        p = out / "plots" / name
        assert p.is_file() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and str(p) in captured.err
    assert not (out / "plots" / "accuracy_vs_quality.png").exists()

    # resume: the same command trains nothing; adding the PCM baseline trains only that
    t0 = time.perf_counter()
    assert cli_main(["sweep", *_argv(fsdd_dir, out)]) == 0
    assert time.perf_counter() - t0 < 5
    assert "2 of 2 trials already finished" in capsys.readouterr().err
    assert cli_main(["sweep", *_argv(fsdd_dir, out, "pcm,8,32")]) == 0
    assert "1 trial(s) run, 2 already done, of 3" in capsys.readouterr().out
    after = ResultStore(out, readonly=True).records()
    assert len(after) == 3 and [r for r in after if r["bitrate"] is not None] == list(recs.values())
    pcm = next(r for r in after if r["bitrate"] is None)
    assert pcm["bits_per_second"] == pytest.approx(16 * 8000) and "|pcm|" in pcm["key"]

    assert cli_main(["report", *[str(out), "--format", "markdown", "--no-plots"]]) == 0
    md = capsys.readouterr().out
    header = next(line for line in md.splitlines() if line.startswith("| dataset"))
    assert all(f" {c} " in header for c in ("model", "params", "bitrate", "seed", "bits_per_second", "test_accuracy", "accuracy_top10"))
    assert "| pcm |" in md and "Best bitrate per model" in md and "Helmholtz numbers" not in md and "bpp is empty" not in md
