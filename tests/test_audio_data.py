"""Audio data: FSDD (skipped without the data), class folders of WAV/FLAC, and one tiny real trial."""

from __future__ import annotations

import struct
import wave

import numpy as np
import pytest

pytest.importorskip("miniaudio")

from helmholtz.data import (  # noqa: E402
    AudioDataset,
    DataError,
    find_data_file,
    load_audio_folder,
    load_fsdd,
    read_audio,
    stratified_test_mask,
)


@pytest.fixture(scope="module")
def fsdd(fsdd_path):
    return load_fsdd(fsdd_path.parent)


# ------------------------------------------------------------------ FSDD
def test_fsdd_official_split(fsdd):
    assert len(fsdd) == 3000 and fsdd.sample_rate == 8000 and fsdd.name == "fsdd"
    assert fsdd.classes == tuple("0123456789")
    assert int(fsdd.is_test.sum()) == 300
    assert np.bincount(fsdd.labels, minlength=10).tolist() == [300] * 10
    assert np.bincount(fsdd.labels[fsdd.is_test], minlength=10).tolist() == [30] * 10
    # takes 0-4 are the test set: the file names end in _0.wav .. _4.wav exactly there
    takes = np.array([int(f.rsplit("_", 1)[1].split(".")[0]) for f in fsdd.filenames])
    np.testing.assert_array_equal(fsdd.is_test, takes <= 4)
    assert all(w.dtype == np.int16 and w.ndim == 1 for w in fsdd.waveforms)
    lengths = np.array([w.shape[0] for w in fsdd.waveforms])
    assert lengths.min() == 1148 and lengths.max() == 18262
    x, y = fsdd.split("test")
    assert len(x) == 300 and y.shape == (300,)
    assert fsdd.groups is not None and set(np.unique(fsdd.groups).tolist()) == set(range(6))


def test_fsdd_subset(fsdd):
    s = fsdd.subset(100, 20, seed=1)
    assert len(s) == 120 and int(s.is_test.sum()) == 20
    assert s.subset(100, 20, seed=1).labels.tolist() == s.labels.tolist()
    with pytest.raises(ValueError, match="train"):
        fsdd.subset(0)


def test_missing_data_files_raise_data_error_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HELMHOLTZ_DATA", str(tmp_path))
    with pytest.raises(DataError, match="nothing.npz"):
        find_data_file("nothing.npz")
    with pytest.raises(DataError, match="fsdd.npz"):
        load_fsdd(tmp_path)
    with pytest.raises(TypeError, match="data_dir"):
        find_data_file("fsdd.npz", 3)


def write_fsdd(path, n: int = 30, compressed: bool = True, **override) -> dict:
    """A small fsdd.npz of the real file's layout: n clips, takes 0..n//10 - 1 of each digit."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(40, 90, n).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    arrays = {
        "audio": rng.integers(-3000, 3000, int(lengths.sum())).astype(np.int16),
        "offsets": offsets,
        "lengths": lengths,
        "labels": (np.arange(n) % 10).astype(np.uint8),
        "speaker": (np.arange(n) % 3).astype(np.uint8),
        "index": (np.arange(n) // 10).astype(np.uint8) * 3,  # takes 0, 3, 6: two of three are test
        "sample_rate": np.int32(8000),
        "filenames": np.array([f"{i % 10}_s_{i // 10}.wav" for i in range(n)]),
    }
    arrays.update(override)
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return arrays


def test_fsdd_loader_on_a_small_file(tmp_path):
    arrays = write_fsdd(tmp_path / "fsdd.npz")
    ds = load_fsdd(tmp_path)
    assert len(ds) == 30 and ds.sample_rate == 8000 and ds.source == str(tmp_path / "fsdd.npz")
    np.testing.assert_array_equal(ds.is_test, arrays["index"] <= 4)
    np.testing.assert_array_equal(ds.waveforms[7], arrays["audio"][arrays["offsets"][7] : arrays["offsets"][7] + arrays["lengths"][7]])
    assert ds.labels.dtype == np.int64 and ds.labels.tolist() == list(np.arange(30) % 10)


def test_truncated_fsdd_npz_is_a_data_error_naming_the_file(tmp_path):
    write_fsdd(tmp_path / "fsdd.npz")
    raw = (tmp_path / "fsdd.npz").read_bytes()
    for keep in (len(raw) // 3, len(raw) - 40):
        (tmp_path / "fsdd.npz").write_bytes(raw[:keep])
        with pytest.raises(DataError, match=r"fsdd\.npz.*not a readable \.npz file, truncated or corrupt"):
            load_fsdd(tmp_path)


def test_fsdd_float_labels_are_refused(tmp_path):
    write_fsdd(tmp_path / "fsdd.npz", labels=(np.arange(30) % 10).astype(np.float64))
    with pytest.raises(DataError, match=r"fsdd\.npz.*labels must be integers"):
        load_fsdd(tmp_path)


def test_fsdd_with_wrong_arrays_is_refused_naming_the_file(tmp_path):
    write_fsdd(tmp_path / "fsdd.npz", labels=(np.arange(30) % 11).astype(np.uint8))
    with pytest.raises(DataError, match=r"fsdd\.npz.*labels outside 0\.\.9"):
        load_fsdd(tmp_path)
    write_fsdd(tmp_path / "fsdd.npz", lengths=np.full(30, 10**6, np.int32))
    with pytest.raises(DataError, match=r"fsdd\.npz.*clips run past the end of audio"):
        load_fsdd(tmp_path)
    write_fsdd(tmp_path / "fsdd.npz", audio=np.zeros(3000, np.float32))
    with pytest.raises(DataError, match=r"fsdd\.npz.*1-D int16"):
        load_fsdd(tmp_path)
    arrays = write_fsdd(tmp_path / "fsdd.npz")
    np.savez(tmp_path / "fsdd.npz", **{k: v for k, v in arrays.items() if k != "speaker"})
    with pytest.raises(DataError, match=r"fsdd\.npz.*lacks array\(s\) speaker"):
        load_fsdd(tmp_path)


def test_audio_dataset_refuses_a_mask_that_is_not_boolean():
    with pytest.raises(DataError, match="is_test must be a boolean mask"):
        AudioDataset([np.zeros(3, np.int16)], [0], [0.0], 8000)
    with pytest.raises(TypeError, match="sample_rate"):
        AudioDataset([np.zeros(3, np.int16)], [0], [False], 8000.0)


# ------------------------------------------------------------------ folders of files
def write_wav(path, x: np.ndarray, sr: int) -> None:
    x = np.asarray(x, np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1 if x.ndim == 1 else x.shape[1])
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(x.tobytes())


def _crc8(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _crc16(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def write_flac(path, x: np.ndarray, sr: int) -> None:
    """A minimal valid FLAC file: mono, 16-bit, one frame with a VERBATIM subframe."""
    n = int(x.shape[0])
    assert 16 <= n <= 65535
    info = struct.pack(">HH", n, n) + b"\x00" * 6
    info += ((sr << 44) | (0 << 41) | (15 << 36) | n).to_bytes(8, "big") + b"\x00" * 16
    header = b"fLaC" + bytes([0x80]) + len(info).to_bytes(3, "big") + info
    fh = bytes([0xFF, 0xF8, 0x70, 0x08, 0x00]) + struct.pack(">H", n - 1)
    fh += bytes([_crc8(fh)])
    frame = fh + b"\x02" + np.asarray(x, ">i2").tobytes()
    frame += struct.pack(">H", _crc16(frame))
    path.write_bytes(header + frame)


def test_read_flac_and_wav(tmp_path):
    x = (np.sin(np.arange(3000) / 7) * 9000).astype(np.int16)
    write_flac(tmp_path / "a.flac", x, 16000)
    write_wav(tmp_path / "a.wav", x, 16000)
    y, sr = read_audio(tmp_path / "a.flac")
    assert sr == 16000
    np.testing.assert_array_equal(y, x)
    y, sr = read_audio(tmp_path / "a.wav")
    np.testing.assert_array_equal(y, x)
    y, sr = read_audio(tmp_path / "a.wav", 8000)
    assert sr == 8000 and y.shape == (1500,)


def test_load_audio_folder_idmt_layout(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "Samples"
    classes = ["Chorus", "Distortion", "NoFX"]
    for ci, c in enumerate(classes):
        (root / c / "take").mkdir(parents=True)
        for j in range(5):
            x = (rng.normal(0, 3000, 800 + 10 * j)).astype(np.int16)
            if j == 4:
                write_flac(root / c / "take" / f"G{ci}{j}.flac", x, 8000)  # nested, FLAC
            else:
                write_wav(root / c / f"G{ci}{j}.wav", x, 8000)
    # a stereo file at another rate is mixed down and resampled
    write_wav(root / "NoFX" / "stereo.WAV", np.stack([np.full(1600, 1000), np.full(1600, 3000)], 1), 16000)
    (root / "NoFX" / "notes.txt").write_text("not audio")
    (root / "Empty").mkdir()
    ds = load_audio_folder(root, test_fraction=0.4, seed=0)
    assert isinstance(ds, AudioDataset)
    assert ds.classes == tuple(classes) and ds.sample_rate == 8000
    assert np.bincount(ds.labels).tolist() == [5, 5, 6]
    assert np.bincount(ds.labels[ds.is_test]).tolist() == [2, 2, 2]
    stereo = ds.waveforms[ds.filenames.index(str(root / "NoFX" / "stereo.WAV"))]
    assert stereo.shape == (800,) and abs(int(np.median(stereo)) - 2000) <= 1
    again = load_audio_folder([root], test_fraction=0.4, seed=0)
    np.testing.assert_array_equal(again.is_test, ds.is_test)
    only = load_audio_folder(root, classes=["NoFX", "Chorus"], sample_rate=16000)
    assert only.classes == ("NoFX", "Chorus") and only.sample_rate == 16000
    assert np.bincount(only.labels).tolist() == [6, 5]


def test_load_audio_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_audio_folder(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no class subfolders"):
        load_audio_folder(tmp_path)
    (tmp_path / "a").mkdir()
    write_wav(tmp_path / "a" / "x.wav", np.zeros(100, np.int16), 8000)
    with pytest.raises(FileNotFoundError, match="zzz"):
        load_audio_folder(tmp_path, classes=["a", "zzz"])
    with pytest.raises(ValueError, match="test_fraction"):
        load_audio_folder(tmp_path, test_fraction=1.5)
    with pytest.raises(TypeError, match="root"):
        load_audio_folder([3])


def test_audio_folder_split_that_leaves_a_class_without_training_clips_is_an_error(tmp_path):
    for c, n in (("a", 3), ("b", 1)):
        (tmp_path / c).mkdir()
        for j in range(n):
            write_wav(tmp_path / c / f"{j}.wav", np.zeros(100, np.int16), 8000)
    with pytest.raises(DataError, match=r"every clip of class\(es\) b in the test set"):
        load_audio_folder(tmp_path, test_fraction=0.6)


def test_audio_folder_split_with_an_empty_test_set_is_an_error(tmp_path):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        write_wav(tmp_path / c / "0.wav", np.zeros(100, np.int16), 8000)
        write_wav(tmp_path / c / "1.wav", np.zeros(100, np.int16), 8000)
    with pytest.raises(DataError, match="leaves the test set empty"):
        load_audio_folder(tmp_path, test_fraction=0.2)
    assert int(load_audio_folder(tmp_path, test_fraction=0.5).is_test.sum()) == 2


def test_stratified_mask_and_dataset_checks():
    labels = np.repeat(np.arange(4), 10)
    m = stratified_test_mask(labels, 0.3, seed=2)
    assert np.bincount(labels[m]).tolist() == [3, 3, 3, 3]
    with pytest.raises(TypeError, match="int16"):
        AudioDataset([np.zeros(3, np.float32)], [0], [False], 8000)
    with pytest.raises(ValueError, match="one entry per waveform"):
        AudioDataset([np.zeros(3, np.int16)], [0, 1], [False], 8000)
    with pytest.raises(ValueError, match="labels outside"):
        AudioDataset([np.zeros(3, np.int16)], [2], [False], 8000, classes=("a", "b"))


# ------------------------------------------------------------------ the trial
def test_authors_summaries():
    from helmholtz._ml.curves import authors_accuracy, convergence_epoch

    curve = [0.1, 0.5, 0.8, 0.9, 0.95] + [0.96] * 10 + [0.2]
    assert authors_accuracy(curve) == pytest.approx(0.96)
    assert authors_accuracy([0.5, 0.7]) == pytest.approx(0.6)
    # first i with mean(curve[i:i+10]) > 0.99 * 0.96
    e = convergence_epoch(curve)  # counted from 1: index e - 1
    assert np.mean(curve[e - 1 : e + 9]) > 0.99 * 0.96 and all(np.mean(curve[j : j + 10]) <= 0.99 * 0.96 for j in range(e - 1))
    assert e == 4
    assert convergence_epoch([0.1, 0.2, 0.3]) == 3
    assert convergence_epoch([0.0, 0.0]) is None  # an all-zero curve never converges


def test_trial_argument_errors():
    from helmholtz.experiments.audio_runner import run_audio_trial

    x = [np.zeros(800, np.int16)] * 4
    y = np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="bitrate"):
        run_audio_trial(x, y, x, y, sample_rate=8000, bitrate=10, epochs=1)
    with pytest.raises(TypeError, match="x_train"):
        run_audio_trial([np.zeros(800, np.float32)], y[:1], x, y, sample_rate=8000, bitrate=8, epochs=1)
    with pytest.raises(ValueError, match="y_test"):
        run_audio_trial(x, y, x, y[:3], sample_rate=8000, bitrate=8, epochs=1)
    with pytest.raises(ValueError, match="optimizer"):
        run_audio_trial(x, y, x, y, sample_rate=8000, bitrate=8, epochs=1, optimizer="sgd")
    with pytest.raises(ValueError, match="name"):
        run_audio_trial(x, y, x, y, sample_rate=8000, bitrate=8, epochs=1, model="conv9")


def test_tiny_real_fsdd_trial(fsdd):
    pytest.importorskip("torch")
    pytest.importorskip("lameenc")
    from helmholtz.experiments.audio_runner import run_fsdd_trial

    r = run_fsdd_trial(16, "conv3", seed=0, epochs=1, dataset=fsdd, train_subset=200, test_subset=60, hop_length=256, optimizer="adam")
    assert r["dataset"] == "fsdd" and r["model"] == "conv3" and r["bitrate"] == 16 and r["seed"] == 0
    assert r["train_clips"] == 200 and r["test_clips"] == 60
    assert r["codec_sample_rate"] == 8000
    assert r["input_shape"] == (1, 96, 32)
    # exact MP3 bits: above the nominal 16 kbps (whole frames + the codec delay per short clip), below 2x
    assert 16000 < r["bits_per_second"] < 32000
    assert len(r["accuracy_curve"]) == 1 and 0.0 <= r["test_accuracy"] <= 1.0
    assert r["accuracy"] == r["best_test_accuracy"] == r["test_accuracy"]
    assert r["convergence_epoch"] == 1 and r["best_epoch"] == 1 and r["params"] > 0
    assert r["wall_time_s"] >= r["train_time_s"] > 0


def _tones(n_per_class: int = 12, sr: int = 8000) -> AudioDataset:
    """Two classes of short clips: a low and a high tone with noise."""
    rng = np.random.default_rng(0)
    waves, labels = [], []
    for label, f in enumerate((300.0, 1500.0)):
        for i in range(n_per_class):
            n = 2400 + 100 * i
            t = np.arange(n) / sr
            waves.append((6000 * np.sin(2 * np.pi * (f + 20 * i) * t) + rng.normal(0, 300, n)).astype(np.int16))
            labels.append(label)
    labels = np.array(labels)
    return AudioDataset(waves, labels, stratified_test_mask(labels, 0.25, 0), sr, ("low", "high"), "tones")


def test_audio_trial_on_synthetic_tones():
    pytest.importorskip("torch")
    from helmholtz.experiments.audio_runner import run_audio_trial

    ds = _tones()
    x_tr, y_tr = ds.split("train")
    x_te, y_te = ds.split("test")
    r = run_audio_trial(x_tr, y_tr, x_te, y_te, sample_rate=8000, bitrate=128, model="A", epochs=2, optimizer="adam", hop_length=256)
    assert r["codec_sample_rate"] == 16000 and r["model"] == "conv3"
    assert 128000 < r["bits_per_second"] < 2 * 128000
    assert len(r["accuracy_curve"]) == 2 and 1 <= r["best_epoch"] <= 2
    pcm = run_audio_trial(x_tr, y_tr, x_te, y_te, sample_rate=8000, bitrate=None, epochs=1, hop_length=256)
    assert pcm["bits_per_second"] == pytest.approx(16 * 8000) and pcm["bitrate"] is None


def test_runner_plugs_into_helmholtz_sweep(monkeypatch):
    """The audio runner against the sweep's TrialRunner / run_trial / store columns, on synthetic data."""
    pytest.importorskip("torch")
    sweep = pytest.importorskip("helmholtz.experiments.sweep")
    store = pytest.importorskip("helmholtz.experiments.store")
    if not all(hasattr(sweep, a) for a in ("TrialRunner", "TrialSpec", "run_trial", "register_runner")):
        pytest.skip("helmholtz.sweep has no pluggable trial runners")
    from helmholtz.experiments.audio_runner import make_trial_runner

    runner = make_trial_runner({"hop_length": 256})
    assert runner.level == "bitrate" and runner.check_model("1") == "conv3" and runner.check_level(32.0) == 32
    with pytest.raises(ValueError):
        runner.check_level(10)
    ds = _tones()
    rate = runner.rate(ds, [16])[16]
    assert 16000 < rate["bits_per_second"] < 32000
    f_tr, f_te = runner.compress(ds, [16], "cpu")[16]
    assert f_tr.shape[0] == int((~ds.is_test).sum()) and f_tr.shape[1:] == (1, 96, 32)
    from helmholtz import data

    monkeypatch.setitem(data.DATASETS, "tones", data.DatasetSpec("tones", lambda d=None, **kw: _tones(), "audio", "bitrate"))
    monkeypatch.setitem(sweep.TRIAL_RUNNERS, "audio", runner)
    spec = sweep.TrialSpec(dataset="tones", model="conv3", quality=None, seed=0, recipe="fast", epochs=1, bitrate=16)
    record = sweep.run_trial(spec, ds, device="cpu", compressed=(f_tr, f_te), rate=rate, progress=False)
    unknown = set(record) - set(store.COLUMNS)
    assert not unknown, unknown
    assert record["bitrate"] == 16 and record["bits_per_second"] == rate["bits_per_second"]
    assert record["extra"]["codec_sample_rate"] == 8000 and record["train_images"] == f_tr.shape[0]


def test_runner_codes_each_bitrate_once(monkeypatch):
    """The sweep asks for the rate, then the features: one MP3 pass per split and bitrate serves both."""
    pytest.importorskip("torch")
    pytest.importorskip("lameenc")
    from helmholtz.experiments import audio_runner as audio_sweep

    calls = []
    real = audio_sweep.compress_clips

    def counting(waveforms, sample_rate, bitrate, workers=None):
        calls.append(bitrate)
        return real(waveforms, sample_rate, bitrate, workers)

    monkeypatch.setattr(audio_sweep, "compress_clips", counting)
    runner = audio_sweep.make_trial_runner({"hop_length": 256})
    ds = _tones()
    rates = runner.rate(ds, [8.0, 32.0, None])
    feats = runner.compress(ds, [8.0, 32.0, None], "cpu")
    assert sorted(calls, key=str) == sorted([8, 8, 32, 32, None, None], key=str)  # train + test, once per level
    assert rates[8.0]["bits_per_second"] < rates[32.0]["bits_per_second"] < rates[None]["bits_per_second"] == pytest.approx(16 * 8000)
    assert set(feats) == {8.0, 32.0, None} and feats[None][0].shape[1:] == (1, 96, 32)
    # the decoded clips were handed over, not kept; the rates stay cached
    assert ds.__dict__["_helmholtz_mp3_clips"] == {}
    assert runner.rate(ds, [32])[32] == rates[32.0] and len(calls) == 6
    with pytest.raises(ValueError, match="not available for 44100 Hz"):
        runner.rate(AudioDataset([np.zeros(4410, np.int16)] * 2, [0, 1], [False, True], 44100), [144])
