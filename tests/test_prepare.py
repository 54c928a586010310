"""helmholtz prepare: shards that read back exactly, resume after SIGKILL, refuse to mix, and memory flat in N."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helmholtz import data
from helmholtz.cli import main
from helmholtz.data import DataError, Reader

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _photos(root, n_per_class=6, classes=("cat", "dog"), size=(40, 90), seed=0, fmt="JPEG"):
    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        for c in classes:
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n_per_class):
                h, w = (int(v) for v in rng.integers(size[0], size[1], 2))
                ramp = np.add.outer(np.arange(h), np.arange(w))[..., None] * 2
                im = (ramp + rng.integers(0, 50, (h, w, 3))).astype(np.uint8)
                Image.fromarray(im).save(d / f"{i}.{fmt.lower()}", format=fmt)
    return root


def test_prepare_writes_shards_that_read_back_as_the_source_decodes(tmp_path, capsys):
    src = _photos(tmp_path / "photos")
    out = tmp_path / "prep"
    assert main(["prepare", "folder", "--data-dir", str(src), "--size", "24x32", "--out", str(out), "--shard-size", "5", "--no-progress"]) == 0
    assert "prepared train 12, test 12 images of 24x32" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["options"]["fit"] == "crop" and manifest["classes"] == ["cat", "dog"]
    assert [s["count"] for s in manifest["splits"]["train"]["shards"]] == [5, 5, 2]
    shard = np.load(out / "train" / "00000.npy", mmap_mode="r")
    assert isinstance(shard, np.memmap) and shard.shape == (5, 24, 32, 3)
    prepared = data.open(f"prepared:{out}", "train")
    source = data.open("folder", "train", data_dir=src, size=(24, 32))
    px, py = prepared[:]
    sx, sy = source[:]
    np.testing.assert_array_equal(px, sx)
    np.testing.assert_array_equal(py, sy)
    # random access across shard boundaries, in any order
    idx = np.array([11, 0, 4, 5, 5])
    np.testing.assert_array_equal(prepared[idx][0], sx[idx])
    assert prepared.classes == ("cat", "dog") and prepared.image_shape == (24, 32, 3)


def test_a_prepared_sets_fingerprint_comes_from_its_manifest_not_its_pixels(tmp_path, monkeypatch):
    from helmholtz._data import prepared as prepared_module
    from helmholtz.experiments.trial import source_sha256

    src = _photos(tmp_path / "photos", n_per_class=2)
    out = tmp_path / "prep"
    assert main(["prepare", "folder", "--data-dir", str(src), "--size", "16x16", "--out", str(out), "--no-progress"]) == 0
    first = source_sha256(data.load_dataset(f"prepared:{out}"))

    def refuse(*args, **kwargs):
        raise AssertionError("the pixels were read")

    monkeypatch.setattr(prepared_module.PreparedReader, "_read", refuse)
    assert source_sha256(data.load_dataset(f"prepared:{out}")) == first
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["fingerprint"] = "0" * 64
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert source_sha256(data.load_dataset(f"prepared:{out}")) != first


@pytest.mark.parametrize("fit", ["crop", "pad", "stretch"])
def test_each_fit_keeps_its_rule(tmp_path, fit):
    (tmp_path / "p" / "a").mkdir(parents=True)
    (tmp_path / "p" / "b").mkdir(parents=True)
    wide = np.full((10, 40, 3), 200, np.uint8)
    for c in ("a", "b"):
        for i in range(2):
            Image.fromarray(wide).save(tmp_path / "p" / c / f"{i}.png")
    out = tmp_path / f"prep-{fit}"
    assert main(["prepare", str(tmp_path / "p"), "--size", "20x20", "--fit", fit, "--out", str(out), "--no-progress"]) == 0
    x, _ = data.open(str(out))[:]
    if fit == "pad":  # the 10x40 image scaled to 5x20, centred on black
        assert (x[:, :7] == 0).all() and (x[:, 13:] == 0).all() and (x[:, 8:12] == 200).all()
    else:  # crop fills the square from the centre; stretch fills it by distorting: both without black
        assert (x == 200).all()


def test_prepare_refuses_to_mix_two_sources_or_option_sets_and_foreign_folders(tmp_path, capsys):
    src = _photos(tmp_path / "photos", n_per_class=2)
    other = _photos(tmp_path / "other", n_per_class=2, seed=1)
    out = tmp_path / "prep"
    base = ["prepare", "folder", "--size", "16x16", "--out", str(out), "--no-progress"]
    assert main([*base, "--data-dir", str(src)]) == 0
    assert main([*base, "--data-dir", str(src)]) == 0
    assert "already prepared" in capsys.readouterr().err
    assert main([*base, "--data-dir", str(other)]) == 2
    assert "holds another preparation (source_fingerprint" in capsys.readouterr().err
    assert main([*base, "--data-dir", str(src), "--fit", "pad"]) == 2
    assert "holds another preparation (options" in capsys.readouterr().err
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert main(["prepare", "folder", "--data-dir", str(src), "--size", "16x16", "--out", str(tmp_path / "mine"), "--no-progress"]) == 2
    assert "did not write" in capsys.readouterr().err and (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_prepare_arguments_are_checked_before_anything_is_written(tmp_path, capsys):
    src = _photos(tmp_path / "photos", n_per_class=2)
    for args, message in (
        (["--size", "16"], "--size must be 'HxW'"),
        (["--size", "9999999999999999999x1"], "over the limit"),
        (["--size", "16x16", "--workers", "0"], "--workers must be >= 1"),
        (["--size", "16x16", "--shard-size", "0"], "--shard-size must be >= 1"),
    ):
        assert main(["prepare", "folder", "--data-dir", str(src), "--out", str(tmp_path / "x"), *args]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "x").exists()


def test_skip_bad_leaves_undecodable_files_out_and_counts_them(tmp_path, capsys):
    src = _photos(tmp_path / "photos", n_per_class=3)
    (src / "train" / "cat" / "9.jpeg").write_bytes(b"\xff\xd8\xff\xe0 not a whole JPEG")
    assert main(["prepare", "folder", "--data-dir", str(src), "--size", "16x16", "--out", str(tmp_path / "a"), "--no-progress"]) == 2
    assert "9.jpeg' is not a readable image" in capsys.readouterr().err
    assert main(["prepare", "folder", "--data-dir", str(src), "--size", "16x16", "--out", str(tmp_path / "b"), "--no-progress", "--skip-bad"]) == 0
    captured = capsys.readouterr()
    assert "1 file(s) could not be decoded and were left out" in captured.out and "9.jpeg" in captured.err
    r = data.open(str(tmp_path / "b"))
    assert len(r) == 6 and r.labels.tolist() == [0, 0, 0, 1, 1, 1]


def test_prepare_resumes_after_sigkill_without_redoing_finished_shards(tmp_path):
    src = tmp_path / "photos"
    rng = np.random.default_rng(3)
    for c in ("a", "b"):
        (src / c).mkdir(parents=True)
        for i in range(150):
            ramp = np.add.outer(np.arange(300), np.arange(300))[..., None] // 3
            Image.fromarray((ramp + rng.integers(0, 4, (300, 300, 3))).astype(np.uint8)).save(src / c / f"{i:03d}.png")
    out = tmp_path / "prep"
    argv = [sys.executable, "-m", "helmholtz", "prepare", "folder", "--data-dir", str(src), "--size", "32x32", "--out", str(out),
            "--shard-size", "10", "--workers", "1", "--no-progress"]
    proc = subprocess.Popen(argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and len(list((out / "train").glob("*.json"))) < 2:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    manifest = json.loads((out / "manifest.json").read_text())
    if manifest["complete"]:
        pytest.skip("prepare finished before it could be killed (a very fast machine)")
    finished = {j.stem for j in (out / "train").glob("*.json")}
    done = {stem: (out / "train" / f"{stem}.npy").stat().st_mtime_ns for stem in finished}
    assert done, "no shard was finished before the kill"
    assert subprocess.run(argv, env=ENV, capture_output=True, timeout=300).returncode == 0
    assert json.loads((out / "manifest.json").read_text())["complete"]
    # the shards finished before the kill were kept as they were, not written again
    assert {stem: (out / "train" / f"{stem}.npy").stat().st_mtime_ns for stem in finished} == done
    leftovers = [p.name for p in out.rglob("*.tmp")]
    assert leftovers == []
    again = tmp_path / "again"
    assert subprocess.run([*argv[:-7], "--out", str(again), "--shard-size", "10", "--workers", "2", "--no-progress"], env=ENV,
                          capture_output=True, timeout=300).returncode == 0
    for split in ("train", "test"):
        a, b = data.open(str(out), split)[:], data.open(str(again), split)[:]
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


class _Tiles(Reader):
    """N deterministic 32x32 RGB images made on demand (a large source that costs no memory)."""

    def __init__(self, n: int, split: str) -> None:
        self.labels = np.arange(n, dtype=np.int64) % 10
        self.name, self.split, self.classes, self.source = "tiles", split, tuple(str(i) for i in range(10)), "generated"

    @property
    def image_shape(self):
        return (32, 32, 3)

    def _read(self, indices):
        base = np.add.outer(np.arange(32), np.arange(32)).astype(np.uint8)[None, ..., None] * 3
        noise = ((indices[:, None, None, None] * 2654435761 + np.arange(32 * 32 * 3).reshape(1, 32, 32, 3) * 40503) >> 7) % 61
        return (base + noise).astype(np.uint8)

    def _identity(self):
        return f"tiles:{len(self)}"


def _peak_rss_mb(code: str) -> tuple[float, str]:
    wrapper = (
        "import resource, subprocess, sys\n"
        f"p = subprocess.run([sys.executable, '-c', {code!r}], capture_output=True, text=True)\n"
        "print(p.stdout + p.stderr, file=sys.stderr)\n"
        "sys.exit(p.returncode) if p.returncode else print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", wrapper], env=ENV, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    return float(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.mark.slow
def test_info_and_sweep_preparation_keep_memory_flat_on_a_set_of_300_mb(tmp_path):
    pytest.importorskip("pandas")
    n = 100_000  # 307 MB of pixels
    out = tmp_path / "tiles"
    data.prepare("tiles", {"train": _Tiles(n, "train"), "test": _Tiles(2_000, "test")}, out, size=(32, 32), workers=1, progress=False)
    nbytes = n * 32 * 32 * 3 / 2**20
    info_peak, log = _peak_rss_mb(f"from helmholtz.cli import main; raise SystemExit(main(['info', '--dataset', 'prepared:{out}', '--split', 'train', '--qualities', '50', '--workers', '1']))")
    assert "100000 images" in log
    baseline, _ = _peak_rss_mb("import numpy, pandas, helmholtz.info, helmholtz.data, helmholtz.cli.info")
    assert info_peak - baseline < 0.5 * nbytes, f"info peaked at {info_peak:.0f} MB (imports alone {baseline:.0f} MB) on {nbytes:.0f} MB of pixels"
    prep_code = (
        "import resource\n"
        "from helmholtz.data import load_dataset\n"
        "from helmholtz.experiments.image_runner import RUNNER\n"
        "from helmholtz.experiments.runners import TrainOptions\n"
        "import torch\n"
        f"ds = load_dataset('prepared:{out}')\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "p = RUNNER.prepare(ds, 50, TrainOptions())\n"
        "print('before', before, 'bpp', p.rate['bpp'], 'shape', tuple(p.train[0].shape))\n"
    )
    prep_peak, log = _peak_rss_mb(prep_code)
    before = float(log.split("before ")[1].split()[0])
    assert "shape (100000, 32, 32, 3)" in log
    assert prep_peak - before < 0.5 * nbytes, f"preparation peaked at {prep_peak:.0f} MB ({before:.0f} MB before it) on {nbytes:.0f} MB of pixels"
