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


@pytest.fixture
def small_features(monkeypatch):
    """Coarser spectrograms (hop 256: 96 x 32) so that the trial tests stay quick."""
    from helmholtz.experiments import audio_runner

    monkeypatch.setattr(audio_runner, "FSDD_FEATURES", {**audio_runner.FSDD_FEATURES, "hop_length": 256})
    return audio_runner


def test_the_audio_runner_measures_exact_mp3_rates_and_builds_device_features(small_features):
    pytest.importorskip("torch")
    pytest.importorskip("lameenc")
    from helmholtz.experiments.runners import TrainOptions

    runner = small_features.RUNNER
    assert runner.level == "bitrate" and runner.check_model("1") == "conv3" and runner.check_level(32.0) == 32 and runner.check_level("pcm") is None
    with pytest.raises(ValueError):
        runner.check_level(10)
    ds = _tones()
    low = runner.prepare(ds, 16, TrainOptions())
    high = runner.prepare(ds, 128, TrainOptions())
    pcm = runner.prepare(ds, None, TrainOptions())
    assert 16000 < low.rate["bits_per_second"] < 32000 < high.rate["bits_per_second"]  # whole frames and codec delay: above nominal
    assert pcm.rate["bits_per_second"] == pytest.approx(16 * 8000) and pcm.extra["codec_sample_rate"] == 8000
    assert high.extra["codec_sample_rate"] == 16000  # 128 kbps is not carried at 8 kHz: coded at 16 kHz
    f_tr, y_tr = low.train
    assert f_tr.shape == (int((~ds.is_test).sum()), 1, 96, 32) and len(y_tr) == f_tr.shape[0]
    assert len({low.data_sha256, high.data_sha256, pcm.data_sha256}) == 3
    with pytest.raises(ValueError, match="not available for 44100 Hz"):
        runner.check_data(AudioDataset([np.zeros(4410, np.int16)] * 2, [0, 1], [False, True], 44100), [144])


def test_an_audio_trial_trains_through_the_one_trainer(small_features):
    pytest.importorskip("torch")
    from helmholtz.experiments.runners import TrainOptions
    from helmholtz.experiments.spec import TrialSpec
    from helmholtz.experiments.store import COLUMNS
    from helmholtz.experiments.trial import run_trial

    ds = _tones()
    spec = TrialSpec(dataset="fsdd", model="conv3", quality=None, seed=0, recipe="fast", epochs=2, bitrate=None)
    record = run_trial(spec, ds, TrainOptions())
    state = record.pop("state")
    assert not set(record) - set(COLUMNS), set(record) - set(COLUMNS)
    assert record["bitrate"] is None and record["bits_per_second"] == pytest.approx(16 * 8000)
    assert len(record["accuracy_curve"]) == 2 and 1 <= record["best_epoch"] <= 2 and record["params"] > 0
    assert record["extra"]["accuracy_top10"] == pytest.approx(np.mean(record["accuracy_curve"]))
    assert record["extra"]["optimizer"] == "adam" and record["extra"]["input_shape"] == [1, 96, 32]
    assert record["recipe_json"] and record["source_sha256"] and record["data_sha256"] and state
