import gzip
import hashlib
import pickle
import tarfile

import numpy as np
import pytest

from helmholtz import data
from helmholtz._data import images as images_module
from helmholtz.data import DataError


def _write_cifar_batches(folder, rng):
    folder.mkdir(parents=True)
    batches = {}
    for name, n in [(f"data_batch_{i}", 20) for i in range(1, 6)] + [("test_batch", 10)]:
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        y = list(rng.integers(0, 10, n))
        (folder / name).write_bytes(pickle.dumps({b"data": x, b"labels": y}))
        batches[name] = (x, y)
    return batches


def test_cifar_pickle_folder(tmp_path):
    batches = _write_cifar_batches(tmp_path / "cifar-10-batches-py", np.random.default_rng(1))
    ds = data.load_cifar10(tmp_path)
    assert ds.x_train.shape == (100, 32, 32, 3) and ds.x_test.shape == (10, 32, 32, 3)
    x1, y1 = batches["data_batch_2"]
    # index 20 + j of the train set is data_batch_2[j], CHW rows transposed to HWC
    np.testing.assert_array_equal(ds.x_train[23], x1[3].reshape(3, 32, 32).transpose(1, 2, 0))
    assert ds.y_train[23] == y1[3]
    assert ds.num_classes == 10 and ds.classes[0] == "airplane"


def test_cifar_archive_checksum(tmp_path, monkeypatch):
    _write_cifar_batches(tmp_path / "src" / "cifar-10-batches-py", np.random.default_rng(2))
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    # a made-up archive has the wrong MD5: refused ...
    with pytest.raises(DataError, match="MD5"):
        data.load_cifar10(tmp_path)
    # ... and read when the expected checksum is its own
    monkeypatch.setattr(images_module, "CIFAR10_MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    assert data.load_cifar10(tmp_path).x_train.shape == (100, 32, 32, 3)


def test_npz_shape_and_corruption(tmp_path):
    np.savez(tmp_path / "cifar10.npz", x_train=np.zeros((4, 28, 28, 3), np.uint8), y_train=np.zeros(4), x_test=np.zeros((2, 28, 28, 3), np.uint8), y_test=np.zeros(2))
    with pytest.raises(DataError, match="expected"):
        data.load_cifar10(tmp_path)
    (tmp_path / "cifar10.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="not a readable"):
        data.load_cifar10(tmp_path)
    np.savez(tmp_path / "cifar10.npz", x_train=np.zeros((4, 32, 32, 3), np.uint8))
    with pytest.raises(DataError, match="lacks"):
        data.load_cifar10(tmp_path)


def test_missing_files_and_dirs(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="none of"):
        data.load_cifar10(tmp_path)
    with pytest.raises(DataError, match="mnist"):
        data.load_mnist(tmp_path)
    with pytest.raises(DataError, match="not a folder"):
        data.load_cifar10(tmp_path / "nope")
    monkeypatch.delenv("HELMHOLTZ_DATA", raising=False)
    with pytest.raises(DataError, match="HELMHOLTZ_DATA"):
        data.resolve_data_dir(None)
    monkeypatch.setenv("HELMHOLTZ_DATA", str(tmp_path))
    assert data.resolve_data_dir(None) == tmp_path


def _idx(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def test_mnist_idx_with_checksums(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (6, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 6),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 3),
    }
    sums = {}
    for name, arr in arrays.items():
        raw = _idx(arr)
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(raw))
        sums[name] = hashlib.md5(raw).hexdigest()
    with pytest.raises(DataError, match="MD5"):  # the real MNIST checksums do not match made-up files
        data.load_mnist(tmp_path)
    monkeypatch.setattr(images_module, "MNIST_FILES", sums)
    ds = data.load_mnist(tmp_path)
    assert ds.x_train.shape == (6, 28, 28, 1) and ds.x_test.shape == (3, 28, 28, 1)
    np.testing.assert_array_equal(ds.x_train[..., 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(ds.y_test, arrays["t10k-labels-idx1-ubyte"])


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(4)
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)).save(tmp_path / split / cls / f"{i}.png")
    ds = data.load_image_folder(tmp_path)
    assert ds.x_train.shape == (6, 8, 10, 3) and ds.x_test.shape == (4, 8, 10, 3)
    assert ds.classes == ("cat", "dog")
    assert list(ds.y_train) == [0, 0, 0, 1, 1, 1]
    np.testing.assert_array_equal(ds.x_test[2], np.asarray(Image.open(tmp_path / "test" / "dog" / "0.png")))
    # no train/test split: one folder per class, split per class
    flat = data.load_image_folder(tmp_path / "train", test_fraction=0.34)
    assert len(flat.y_train) + len(flat.y_test) == 6 and sorted(set(flat.y_test)) == [0, 1]
    # mixed sizes are refused
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(tmp_path / "train" / "cat" / "odd.png")
    with pytest.raises(DataError, match="different shapes"):
        data.load_image_folder(tmp_path)


def test_subset_is_fixed_and_validated():
    a = data.subset_indices(100, 10, 0)
    assert len(set(a.tolist())) == 10 and np.array_equal(a, data.subset_indices(100, 10, 0))
    assert len(data.subset_indices(5, 10)) == 5
    with pytest.raises(ValueError, match="train_subset"):
        data.subset_indices(100, 0, name="train_subset")


def test_unknown_dataset():
    with pytest.raises(ValueError, match="dataset must be one of"):
        data.load_dataset("imagenet", ".")


def test_real_cifar10(data_dir):
    ds = data.load_cifar10(data_dir)
    assert ds.x_train.shape == (50000, 32, 32, 3) and ds.x_test.shape == (10000, 32, 32, 3)
    # the well-known first pixels of the official pickle (CHW order) and first labels
    assert ds.x_train[0].transpose(2, 0, 1).ravel()[:3].tolist() == [59, 43, 50]
    assert ds.y_train[:5].tolist() == [6, 9, 9, 4, 1]


def test_real_mnist(data_dir):
    if not (data_dir / "mnist.npz").is_file():
        pytest.skip("mnist.npz not in the data folder")
    ds = data.load_mnist(data_dir)
    assert ds.x_train.shape == (60000, 28, 28, 1) and ds.y_test[:5].tolist() == [7, 2, 1, 0, 4]
