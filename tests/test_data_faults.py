"""Issue 18's data and info defects: each one a clear error naming the flag or file, never a traceback or a silent coercion."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from helmholtz import data, info, jpeg
from helmholtz.cli import main
from helmholtz.data import DataError

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _folder(root, n=2, size=(8, 8)):
    from PIL import Image

    for c in ("a", "b"):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(np.full((*size, 3), 40 * i, np.uint8)).save(root / c / f"{i}.png")
    return root


@pytest.mark.parametrize("size", ["9999999999999999999x1", "100000x100000"])
def test_a_huge_image_size_is_refused_naming_the_flag_before_any_work(tmp_path, size, capsys):
    pytest.importorskip("PIL")
    pytest.importorskip("torch")
    folder = _folder(tmp_path / "imgs")
    out = tmp_path / "out"
    code = main(["sweep", "--dataset", "folder", "--data-dir", str(folder), "--models", "A", "--qualities", "20", "--epochs", "1",
                 "--image-size", size, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "--image-size" in err and "over the limit" in err and "Traceback" not in err
    assert not out.exists()


def test_the_pixel_limit_applies_to_a_whole_folder_as_well_as_to_each_file(tmp_path):
    # issue 18: 16 PNGs of 9000x9000 (each within the per-file limit) ran out of memory; the headers alone now refuse them
    Image = pytest.importorskip("PIL.Image")
    folder = tmp_path / "big"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    Image.new("RGB", (9000, 9000)).save(folder / "a" / "0.png", compress_level=1)
    for k in range(1, 16):
        shutil.copy(folder / "a" / "0.png", folder / ("a" if k < 8 else "b") / f"{k}.png")
    with pytest.raises(DataError, match=r"would decode to [\d,]+ bytes of pixels in memory, over the limit of 2,147,483,648 \(HELMHOLTZ_MAX_MEMORY_BYTES\).*helmholtz prepare"):
        data.load_image_folder(folder)
    # the same folder streams through a reader without holding it
    r = data.open(str(folder), size=(16, 16))
    assert len(r) + len(data.open(str(folder), "test")) == 16


def test_the_per_dataset_limit_is_set_in_the_environment(tmp_path, monkeypatch):
    folder = _folder(tmp_path / "imgs", n=3, size=(20, 20))
    monkeypatch.setenv("HELMHOLTZ_MAX_MEMORY_BYTES", "1000")
    with pytest.raises(DataError, match="over the limit of 1,000"):
        data.load_image_folder(folder)
    monkeypatch.setenv("HELMHOLTZ_MAX_MEMORY_BYTES", str(6 * 20 * 20 * 3))
    assert data.load_image_folder(folder).x_train.shape[1:] == (20, 20, 3)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_info_csv_into_proc_names_the_flag_before_the_work(tmp_path, capsys):
    pytest.importorskip("pandas")
    empty = tmp_path / "no_data"
    empty.mkdir()
    # the data folder is empty: had the work started, the error would be about cifar10.npz
    assert main(["info", "--data-dir", str(empty), "--csv", "/proc/x.csv"]) == 2
    err = capsys.readouterr().err
    assert "helmholtz info: error: --csv '/proc/x.csv' cannot be written" in err and "cifar10" not in err


def test_bits_per_pixel_of_a_ragged_list_follow_jpeg_bits():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 256, (8, 16, 3), dtype=np.uint8), rng.integers(0, 256, (24, 8, 3), dtype=np.uint8)
    scan = info.scan_bits_per_pixel([a, b], [20, 30])
    np.testing.assert_allclose(scan, [jpeg.bits(a[None], 20)[0] / 128, jpeg.bits(b[None], 30)[0] / 192])
    files = info.file_bits_per_pixel([a, b], [20, 30])
    np.testing.assert_allclose(files, [8 * len(jpeg.encode(a[None], 20)[0]) / 128, 8 * len(jpeg.encode(b[None], 30)[0]) / 192])


def test_shannon_entropy_of_far_apart_values_needs_memory_in_the_samples_not_the_range():
    # issue 18: shannon_entropy(np.array([0, 2**31])) allocated 16 GiB; under a 1.5 GiB address-space cap it must still answer
    code = (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))\n"
        "import numpy as np\n"
        "from helmholtz.info import shannon_entropy\n"
        "print(shannon_entropy(np.array([0, 2**31])), shannon_entropy(np.array([[0, 2**40, 2**40, 5], [1, 1, 1, 1]])).tolist())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1.0", "[1.5,", "0.0]"]


def test_a_sweep_on_an_npz_without_test_images_names_the_array(tmp_path, capsys):
    pytest.importorskip("torch")
    np.savez(tmp_path / "cifar10.npz", x_train=np.zeros((4, 32, 32, 3), np.uint8), y_train=np.zeros(4, np.uint8),
             x_test=np.zeros((0, 32, 32, 3), np.uint8), y_test=np.zeros(0, np.uint8))
    out = tmp_path / "out"
    code = main(["sweep", "--data-dir", str(tmp_path), "--models", "A", "--qualities", "20", "--epochs", "1", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "x_test" in err and "holds no images" in err and "memoryview" not in err


def _wav(path, rate=8000, n=800, tag=None):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.sin(np.arange(n) / 5) * 5000).astype(np.int16).tobytes())
    if tag is not None:
        raw = bytearray(path.read_bytes())
        at = raw.index(b"fmt ") + 8
        raw[at : at + 2] = struct.pack("<H", tag)
        path.write_bytes(bytes(raw))


def test_a_wav_with_an_unknown_format_tag_is_named_not_loaded_empty(tmp_path):
    pytest.importorskip("miniaudio")
    _wav(tmp_path / "odd.wav", tag=0x1234)
    with pytest.raises(DataError, match=r"odd\.wav' decodes to no samples \(WAV format tag 4660\)"):
        data.read_audio(tmp_path / "odd.wav")
    root = tmp_path / "clips"
    for c in ("x", "y"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            _wav(root / c / f"{i}.wav")
    _wav(root / "y" / "3.wav", tag=0x1234)
    with pytest.raises(DataError, match=r"3\.wav' decodes to no samples"):
        data.load_audio_folder(root)


def test_one_wav_claiming_1_hz_does_not_set_the_folders_rate(tmp_path):
    pytest.importorskip("miniaudio")
    root = tmp_path / "clips"
    for c in ("x", "y"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            _wav(root / c / f"{i}.wav")
    _wav(root / "x" / "0.wav", rate=1)  # the first file, in name order
    with pytest.raises(DataError, match=r"0\.wav' declares a sample rate of 1 Hz"):
        data.load_audio_folder(root)
    _wav(root / "x" / "0.wav", rate=16000, n=1600)  # a genuine other rate: resampled to the folder's common one
    ds = data.load_audio_folder(root)
    assert ds.sample_rate == 8000 and {w.shape[0] for w in ds.waveforms} == {800}
