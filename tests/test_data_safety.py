"""Hostile and damaged data files: every loader refuses them with a DataError naming the file, and runs nothing."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import tarfile
import wave
import zipfile

import numpy as np
import pytest

from helmholtz import data
from helmholtz._data import images as images_module
from helmholtz._data import safety
from helmholtz.data import DataError


def _batch(n: int = 4, labels=None) -> dict:
    return {b"data": np.zeros((n, 3072), np.uint8), b"labels": list(range(n)) if labels is None else labels}


def _cifar_folder(root, replace: dict | None = None):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(pickle.dumps(_batch()))
    for name, payload in (replace or {}).items():
        (folder / name).write_bytes(payload)
    return folder


# ------------------------------------------------------------------ pickles that would run code
class _RunsOnLoad:
    """Unpickling this calls ``func(*args)``: the classic __reduce__ exploit."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _exploits(marker):
    return {
        "os.system": _RunsOnLoad(os.system, f"touch {marker}"),
        "builtins.open": _RunsOnLoad(open, str(marker), "w"),
    }


@pytest.mark.parametrize("kind", ["os.system", "builtins.open"])
def test_crafted_cifar_pickle_runs_no_code(tmp_path, kind):
    # the payload is real: plain pickle.loads creates the file
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps({**_batch(), b"labels": _exploits(proof)[kind]}))
    assert proof.exists()
    marker = tmp_path / "pwned"
    _cifar_folder(tmp_path / "d", {"data_batch_2": pickle.dumps({**_batch(), b"labels": _exploits(marker)[kind]})})
    with pytest.raises(DataError, match=r"data_batch_2 .*refused unread.*not allowed"):
        data.load_cifar10(tmp_path / "d")
    assert not marker.exists()


def test_crafted_cifar_pickle_in_the_archive_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"
    src = _cifar_folder(tmp_path / "src", {"test_batch": pickle.dumps(_exploits(marker)["os.system"])})
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-py")
    with pytest.raises(DataError, match=r"test_batch in .*cifar-10-python\.tar\.gz.*refused"):
        data.load_cifar10(tmp_path, verify=False)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_cifar_pickle_of_any_protocol_with_numpy_arrays_loads(tmp_path, protocol):
    rng = np.random.default_rng(protocol)
    x = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
    labels = [np.int64(2), np.int64(7), np.int64(0)]  # NumPy scalars need numpy's scalar reconstruction
    _cifar_folder(tmp_path, {"test_batch": pickle.dumps({b"data": x, b"labels": labels, b"batch_label": b"t"}, protocol=protocol)})
    ds = data.load_cifar10(tmp_path)
    assert ds.y_test.tolist() == [2, 7, 0]
    np.testing.assert_array_equal(ds.x_test[1], x[1].reshape(3, 32, 32).transpose(1, 2, 0))


def test_the_unpickler_allows_only_numpy_reconstruction():
    assert {m for m, _ in safety.CIFAR_PICKLE_GLOBALS} == {"numpy", "numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric", "numpy._core.numeric", "_codecs"}
    with pytest.raises(DataError, match="encoding 'rot13' is not allowed"):
        safety.load_cifar_pickle(b"c_codecs\nencode\n(Vx\nVrot13\ntR.", "crafted")


def test_cifar_pickle_that_allocates_more_than_it_holds_is_refused(tmp_path):
    # np.ndarray((N, 3072), uint8) called by REDUCE: allowed names, but no pixels behind them
    crafted = pickle.dumps({b"data": _RunsOnLoad(np.ndarray, (65536, 3072), np.dtype(np.uint8)), b"labels": []}, protocol=2)
    assert b"numpy\nndarray" in crafted and b"_reconstruct" not in crafted
    _cifar_folder(tmp_path, {"data_batch_5": crafted})
    with pytest.raises(DataError, match=r"data_batch_5 .*declares 201,326,592 bytes of pixels in a pickle of"):
        data.load_cifar10(tmp_path)


def test_truncated_cifar_pickle_names_the_member(tmp_path):
    _cifar_folder(tmp_path, {"data_batch_4": pickle.dumps(_batch())[:100]})
    with pytest.raises(DataError, match=r"data_batch_4 in .*truncated or corrupt pickle"):
        data.load_cifar10(tmp_path)


def test_cifar_batch_of_the_wrong_layout_is_refused(tmp_path):
    _cifar_folder(tmp_path, {"data_batch_1": pickle.dumps({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]})})
    with pytest.raises(DataError, match=r"data_batch_1 .*float32.*expected uint8 \(N, 3072\)"):
        data.load_cifar10(tmp_path)
    _cifar_folder(tmp_path / "b", {"data_batch_1": pickle.dumps([1, 2, 3])})
    with pytest.raises(DataError, match="not a CIFAR batch"):
        data.load_cifar10(tmp_path / "b")


# ------------------------------------------------------------------ truncated and corrupt .npz
def _cifar_npz(path, compressed=False):
    rng = np.random.default_rng(0)
    save = np.savez_compressed if compressed else np.savez
    save(path, x_train=rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8), y_train=np.arange(20) % 10,
         x_test=rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8), y_test=np.arange(10))


def test_truncated_cifar10_npz_is_a_data_error_naming_the_file(tmp_path):
    _cifar_npz(tmp_path / "cifar10.npz")
    raw = (tmp_path / "cifar10.npz").read_bytes()
    for keep in (len(raw) // 2, len(raw) - 30, 10):
        (tmp_path / "cifar10.npz").write_bytes(raw[:keep])
        with pytest.raises(DataError, match=r"cifar10\.npz.*not a readable \.npz file, truncated or corrupt"):
            data.load_cifar10(tmp_path)


@pytest.mark.parametrize("compressed", [False, True])
def test_corrupt_cifar10_npz_member_is_a_data_error_naming_the_file(tmp_path, compressed):
    path = tmp_path / "cifar10.npz"
    _cifar_npz(path, compressed)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("x_train.npy")
    raw = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 300  # inside the member's data
    raw[start : start + 64] = bytes(64)
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"cifar10\.npz.*truncated or corrupt \((BadZipFile|error)"):
        data.load_cifar10(tmp_path)


def test_npz_with_pickled_objects_is_refused(tmp_path):
    np.savez(tmp_path / "cifar10.npz", x_train=np.array([{"a": 1}], dtype=object), y_train=np.zeros(1, np.int64),
             x_test=np.zeros((1, 32, 32, 3), np.uint8), y_test=np.zeros(1, np.int64))
    with pytest.raises(DataError, match=r"x_train in .*cifar10\.npz.*Python objects"):
        data.load_cifar10(tmp_path)


def test_npz_bomb_is_refused_before_reading(tmp_path, monkeypatch):
    # a small file whose arrays expand to 6 MB of zeros
    np.savez_compressed(tmp_path / "cifar10.npz", x_train=np.zeros((2048, 32, 32, 3), np.uint8), y_train=np.zeros(2048, np.int64),
                        x_test=np.zeros((1, 32, 32, 3), np.uint8), y_test=np.zeros(1, np.int64))
    assert (tmp_path / "cifar10.npz").stat().st_size < 100_000
    declared = 2048 * 32 * 32 * 3 + 2048 * 8 + 32 * 32 * 3 + 8
    monkeypatch.setenv("HELMHOLTZ_MAX_BYTES", "1000000")
    with pytest.raises(DataError, match=rf"cifar10\.npz.*would expand to {declared:,} bytes, over the limit of 1,000,000.*HELMHOLTZ_MAX_BYTES"):
        data.load_cifar10(tmp_path)
    monkeypatch.setenv("HELMHOLTZ_MAX_BYTES", str(10 << 20))  # raised: the same file loads
    assert data.load_cifar10(tmp_path).x_train.shape == (2048, 32, 32, 3)


def test_npz_header_declaring_more_than_its_member_is_refused(tmp_path):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": (10**9, 32, 32, 3)})
    with zipfile.ZipFile(tmp_path / "cifar10.npz", "w") as zf:
        zf.writestr("x_train.npy", buf.getvalue() + bytes(100))
        for key in ("y_train", "x_test", "y_test"):
            b = io.BytesIO()
            np.save(b, np.zeros(1, np.int64))
            zf.writestr(f"{key}.npy", b.getvalue())
    with pytest.raises(DataError, match=r"x_train in .*declares 3,072,000,000,000 bytes but its member holds"):
        data.load_cifar10(tmp_path)


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(pickle.dumps({"x_train": 1}))
    with pytest.raises(DataError, match=r"mnist\.npz.*not a readable \.npz"):
        data.load_mnist(tmp_path)


# ------------------------------------------------------------------ gzip and tar bombs
def _idx(arr: np.ndarray) -> bytes:
    return bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape) + arr.astype(np.uint8).tobytes()


def _mnist_gz(root, images: int = 2):
    root.mkdir(parents=True, exist_ok=True)
    sums = {}
    for stem, arr in {
        "train-images-idx3-ubyte": np.zeros((images, 28, 28)),
        "train-labels-idx1-ubyte": np.zeros(images),
        "t10k-images-idx3-ubyte": np.zeros((1, 28, 28)),
        "t10k-labels-idx1-ubyte": np.zeros(1),
    }.items():
        raw = _idx(arr)
        (root / f"{stem}.gz").write_bytes(gzip.compress(raw))
        sums[stem] = hashlib.md5(raw).hexdigest()
    return sums


def test_mnist_gzip_bomb_is_refused_naming_the_file(tmp_path, monkeypatch):
    sums = _mnist_gz(tmp_path, images=4000)  # 3 MB of zeros, a few kB of gzip
    assert (tmp_path / "train-images-idx3-ubyte.gz").stat().st_size < 20_000
    monkeypatch.setattr(images_module, "MNIST_FILES", sums)
    monkeypatch.setenv("HELMHOLTZ_MAX_BYTES", "1000000")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz.*gzip stream would expand to .* over the limit of 1,000,000"):
        data.load_mnist(tmp_path)
    monkeypatch.delenv("HELMHOLTZ_MAX_BYTES")
    assert data.load_mnist(tmp_path).x_train.shape == (4000, 28, 28, 1)


def test_truncated_mnist_gzip_is_a_data_error_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(images_module, "MNIST_FILES", _mnist_gz(tmp_path))
    gz = tmp_path / "t10k-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:-12])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz.*not a readable gzip file, truncated or corrupt"):
        data.load_mnist(tmp_path)
    gz.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz.*not a readable gzip"):
        data.load_mnist(tmp_path)


def test_mnist_idx_with_a_short_header_is_refused(tmp_path):
    _mnist_gz(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").unlink()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.*truncated inside its header"):
        data.load_mnist(tmp_path, verify=False)


def _cifar_tar(tmp_path, add=None):
    src = _cifar_folder(tmp_path / "src")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-py")
        if add:
            add(tar)
    return archive


def test_tar_member_bomb_is_refused_before_reading(tmp_path, monkeypatch):
    src = _cifar_folder(tmp_path / "src", {"data_batch_1": pickle.dumps(_batch(1000, [0] * 1000))})  # 3 MB, mostly zeros
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-py")
    assert (tmp_path / "cifar-10-python.tar.gz").stat().st_size < 50_000
    monkeypatch.setenv("HELMHOLTZ_MAX_BYTES", "1000000")
    with pytest.raises(DataError, match=r"cifar-10-python\.tar\.gz.*member cifar-10-batches-py/data_batch_1 would expand to .* over the limit of 1,000,000"):
        data.load_cifar10(tmp_path, verify=False)
    monkeypatch.delenv("HELMHOLTZ_MAX_BYTES")
    assert data.load_cifar10(tmp_path, verify=False).x_train.shape == (1016, 32, 32, 3)


def test_tar_member_that_appears_twice_is_refused(tmp_path):
    def second_copy(tar):
        payload = pickle.dumps(_batch(2))
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))

    _cifar_tar(tmp_path, add=second_copy)
    with pytest.raises(DataError, match="data_batch_1 appears twice"):
        data.load_cifar10(tmp_path, verify=False)


def test_tar_member_that_is_a_link_is_refused(tmp_path):
    def link(tar):
        info = tarfile.TarInfo("cifar-10-batches-py/test_batch")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)

    src = _cifar_folder(tmp_path / "src")
    (src / "test_batch").unlink()
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-py")
        link(tar)
    with pytest.raises(DataError, match="test_batch in .* is not a regular file"):
        data.load_cifar10(tmp_path, verify=False)


def test_truncated_cifar_archive_is_a_data_error_naming_the_file(tmp_path):
    archive = _cifar_tar(tmp_path)
    archive.write_bytes(archive.read_bytes()[:300])
    with pytest.raises(DataError, match=r"cifar-10-python\.tar\.gz.*(truncated or corrupt|lacks)"):
        data.load_cifar10(tmp_path, verify=False)


# ------------------------------------------------------------------ image bombs
def _png(path, arr):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_png_decompression_bomb_is_refused_naming_the_file(tmp_path, monkeypatch):
    _png(tmp_path / "a" / "0.png", np.zeros((64, 64), np.uint8))
    _png(tmp_path / "a" / "bomb.png", np.zeros((300, 400), np.uint8))
    _png(tmp_path / "b" / "0.png", np.zeros((64, 64), np.uint8))
    monkeypatch.setenv("HELMHOLTZ_MAX_IMAGE_PIXELS", "100000")
    with pytest.raises(DataError, match=r"bomb\.png' is 400x300 = 120,000 pixels, over the limit of 100,000.*HELMHOLTZ_MAX_IMAGE_PIXELS"):
        data.load_image_folder(tmp_path, size=(64, 64))
    monkeypatch.setenv("HELMHOLTZ_MAX_IMAGE_PIXELS", "200000")
    assert data.load_image_folder(tmp_path, size=(64, 64)).is_uniform


def test_pillow_decompression_bomb_guard_becomes_a_data_error(tmp_path, monkeypatch):
    from PIL import Image

    _png(tmp_path / "big.png", np.zeros((100, 100), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses above 2x its limit
    with pytest.raises(DataError, match=r"big\.png.*Pillow's decompression-bomb guard"):
        data.read_image(tmp_path / "big.png")


def test_truncated_png_is_a_data_error_naming_the_file(tmp_path):
    rng = np.random.default_rng(0)
    _png(tmp_path / "t.png", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    raw = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"t\.png.*not a readable image, or it is truncated"):
        data.read_image(tmp_path / "t.png")


def test_size_limits_must_be_positive_integers(monkeypatch):
    monkeypatch.setenv("HELMHOLTZ_MAX_BYTES", "lots")
    with pytest.raises(ValueError, match="HELMHOLTZ_MAX_BYTES must be a positive whole number"):
        data.max_bytes()
    monkeypatch.setenv("HELMHOLTZ_MAX_IMAGE_PIXELS", "0")
    with pytest.raises(ValueError, match="HELMHOLTZ_MAX_IMAGE_PIXELS"):
        data.max_image_pixels()
    monkeypatch.setenv("HELMHOLTZ_MAX_BYTES", "1_000_000")
    assert data.max_bytes() == 1_000_000
    monkeypatch.delenv("HELMHOLTZ_MAX_BYTES")
    monkeypatch.delenv("HELMHOLTZ_MAX_IMAGE_PIXELS")
    assert data.max_bytes() == data.DEFAULT_MAX_BYTES == 4 << 30
    assert data.max_image_pixels() == data.DEFAULT_MAX_IMAGE_PIXELS


def test_default_pixel_limit_is_pillows_own():
    from PIL import Image

    assert data.DEFAULT_MAX_IMAGE_PIXELS == Image.MAX_IMAGE_PIXELS


# ------------------------------------------------------------------ audio files
def _wav(path, n, sr=8000):
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(np.zeros(n, np.int16).tobytes())


def test_audio_file_over_the_limit_is_refused_naming_it(tmp_path, monkeypatch):
    pytest.importorskip("miniaudio")
    _wav(tmp_path / "long.wav", 40_000)
    monkeypatch.setenv("HELMHOLTZ_MAX_BYTES", "50000")
    with pytest.raises(DataError, match=r"long\.wav.*more than 50,000 bytes.*HELMHOLTZ_MAX_BYTES"):
        data.read_audio(tmp_path / "long.wav")
    monkeypatch.setenv("HELMHOLTZ_MAX_BYTES", "80000")
    assert data.read_audio(tmp_path / "long.wav")[0].shape == (40_000,)


def test_corrupt_audio_file_is_a_data_error_naming_it(tmp_path):
    pytest.importorskip("miniaudio")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(DataError, match=r"bad\.wav.*not a readable audio file"):
        data.read_audio(tmp_path / "a" / "bad.wav")
    _wav(tmp_path / "a" / "ok.wav", 100)
    _wav(tmp_path / "b" / "ok.wav", 100)
    with pytest.raises(DataError, match=r"bad\.wav"):
        data.load_audio_folder(tmp_path)


def test_npz_with_a_damaged_compression_method_is_a_data_error(tmp_path):
    _cifar_npz(tmp_path / "cifar10.npz", compressed=True)
    raw = bytearray((tmp_path / "cifar10.npz").read_bytes())
    at = raw.rfind(b"PK\x01\x02")  # the last central-directory entry: its compression method field
    raw[at + 10 : at + 12] = (99).to_bytes(2, "little")
    (tmp_path / "cifar10.npz").write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"cifar10\.npz.*NotImplementedError"):
        data.load_cifar10(tmp_path)
