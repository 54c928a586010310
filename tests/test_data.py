import gzip
import struct
import zlib
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
    assert ds.is_uniform and ds.image_shape == (8, 10, 3) and ds.source == str(tmp_path)


def test_subset_is_fixed_and_validated():
    a = data.subset_indices(100, 10, 0)
    assert len(set(a.tolist())) == 10 and np.array_equal(a, data.subset_indices(100, 10, 0))
    assert data.subset_indices(5, 5).tolist() == [0, 1, 2, 3, 4]  # the whole split is allowed
    with pytest.raises(ValueError, match="train_subset"):
        data.subset_indices(100, 0, name="train_subset")
    with pytest.raises(TypeError, match="train_subset"):
        data.subset_indices(100, 2.5, name="train_subset")


def test_every_name_in_all_is_importable():
    assert all(hasattr(data, name) for name in data.__all__)
    assert {"Dataset", "read_image", "load_image_folder", "MAX_BYTES_ENV", "MAX_IMAGE_PIXELS_ENV"} <= set(data.__all__)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="dataset must be one of"):
        data.load_dataset("imagenet1k", ".")


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


# ------------------------------------------------------------------ labels
def _npz(path, y_train, y_test, shape=(32, 32, 3)):
    np.savez(path, x_train=np.zeros((len(y_train), *shape), np.uint8), y_train=np.asarray(y_train),
             x_test=np.zeros((len(y_test), *shape), np.uint8), y_test=np.asarray(y_test))


def test_float_labels_are_refused_not_truncated(tmp_path):
    _npz(tmp_path / "cifar10.npz", np.array([0.0, 2.7, 3.0, 1.0]), np.array([1, 2]))
    with pytest.raises(DataError, match=r"cifar10\.npz.*y_train.*integers.*float64"):
        data.load_cifar10(tmp_path)
    with pytest.raises(DataError, match="y_test: labels must be integers"):
        data.Dataset(np.zeros((1, 4, 4, 3), np.uint8), np.array([0]), np.zeros((1, 4, 4, 3), np.uint8), np.array([1.0]))
    with pytest.raises(DataError, match="labels must be integers"):
        data.Dataset(np.zeros((1, 4, 4, 3), np.uint8), np.array([True]), np.zeros((1, 4, 4, 3), np.uint8), np.array([1]))
    with pytest.raises(DataError, match="labels must be integers"):
        data.AudioDataset([np.zeros(3, np.int16)], [1.5], [False], 8000)


def test_negative_and_out_of_range_labels_are_refused(tmp_path):
    _npz(tmp_path / "cifar10.npz", np.array([0, 10, 3, 1]), np.array([1, 2]))
    with pytest.raises(DataError, match=r"cifar10\.npz.*y_train: labels outside 0\.\.9"):
        data.load_cifar10(tmp_path)
    _npz(tmp_path / "cifar10.npz", np.array([0, 1]), np.array([-1, 2], np.int8))
    with pytest.raises(DataError, match=r"cifar10\.npz.*y_test: labels must be >= 0"):
        data.load_cifar10(tmp_path)
    with pytest.raises(DataError, match="labels outside 0..1"):
        data.AudioDataset([np.zeros(3, np.int16)], [2], [False], 8000, classes=("a", "b"))


def test_labels_must_be_one_per_image(tmp_path):
    _npz(tmp_path / "cifar10.npz", np.array([[0], [1]]), np.array([1, 2]))  # keras-style (N, 1): refused, not squeezed
    with pytest.raises(DataError, match=r"y_train: expected one label per example, shape \(2,\)"):
        data.load_cifar10(tmp_path)


def test_mnist_idx_labels_out_of_range_name_the_file(tmp_path, monkeypatch):
    arrays = {
        "train-images-idx3-ubyte": np.zeros((2, 28, 28)),
        "train-labels-idx1-ubyte": np.array([1, 12]),
        "t10k-images-idx3-ubyte": np.zeros((1, 28, 28)),
        "t10k-labels-idx1-ubyte": np.array([3]),
    }
    for name, arr in arrays.items():
        (tmp_path / name).write_bytes(_idx(arr))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.*labels outside 0\.\.9"):
        data.load_mnist(tmp_path, verify=False)


def test_cifar_pickle_float_labels_are_refused(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar_batches(folder, np.random.default_rng(0))
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1.0, 2.5]}))
    with pytest.raises(DataError, match="data_batch_3.*labels must be integers"):
        data.load_cifar10(tmp_path)


# ------------------------------------------------------------------ subsets
def test_subset_larger_than_split_is_an_error(tmp_path):
    ds = data.Dataset(np.zeros((6, 4, 4, 1), np.uint8), np.arange(6) % 2, np.zeros((3, 4, 4, 1), np.uint8), np.arange(3) % 2)
    with pytest.raises(ValueError, match=r"train_subset=999999 is larger than the train split, which holds 6"):
        ds.subset(999999)
    with pytest.raises(ValueError, match=r"test_subset=4 is larger than the test split, which holds 3"):
        ds.subset(None, 4)
    assert len(ds.subset(6, 3).y_train) == 6  # exactly the split is fine
    audio = data.AudioDataset([np.zeros(3, np.int16)] * 5, [0, 1, 0, 1, 0], [False, False, False, True, True], 8000)
    with pytest.raises(ValueError, match=r"train_subset=4 is larger than the train split, which holds 3"):
        audio.subset(4)
    with pytest.raises(ValueError, match=r"test_subset=3 is larger than the test split, which holds 2"):
        audio.subset(None, 3)
    with pytest.raises(TypeError, match="train_subset"):
        audio.subset("10")
    assert len(audio.subset(3, 2)) == 5


# ------------------------------------------------------------------ image folders
def _png(path, arr):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _folder(root, counts, shape=(6, 6, 3), seed=0):
    """root/<class>/<i>.png with counts[class] random images."""
    rng = np.random.default_rng(seed)
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            _png(root / cls / f"{i}.png", rng.integers(0, 256, shape, dtype=np.uint8))


def test_folder_with_one_image_per_class_is_an_error(tmp_path):
    _folder(tmp_path, {"a": 1, "b": 1, "c": 1})
    with pytest.raises(DataError, match="every class .* has one image.*test set empty"):
        data.load_image_folder(tmp_path)


def test_automatic_split_leaves_every_class_a_training_image(tmp_path):
    _folder(tmp_path, {"a": 2, "b": 5, "c": 1})
    ds = data.load_image_folder(tmp_path, test_fraction=0.9)
    assert np.bincount(ds.y_train, minlength=3).tolist() == [1, 1, 1]  # at most n - 1 of a class go to test
    assert np.bincount(ds.y_test, minlength=3).tolist() == [1, 4, 0]  # a class of one image stays in training


def test_folder_class_without_images_is_an_error(tmp_path):
    _folder(tmp_path, {"a": 3, "b": 3})
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match="empty.*hold no images"):
        data.load_image_folder(tmp_path)
    (tmp_path / "empty" / "notes.txt").unlink()
    (tmp_path / "empty").rmdir()
    (tmp_path / ".hidden").mkdir()  # hidden folders are not classes
    assert data.load_image_folder(tmp_path).classes == ("a", "b")


def test_class_found_only_under_test_is_an_error(tmp_path):
    _folder(tmp_path / "train", {"cat": 2, "dog": 2})
    _folder(tmp_path / "test", {"cat": 1, "dog": 1, "owl": 1})
    with pytest.raises(DataError, match="owl found only under"):
        data.load_image_folder(tmp_path)


def test_folder_with_an_empty_test_split_is_an_error(tmp_path):
    _folder(tmp_path / "train", {"cat": 2, "dog": 2})
    (tmp_path / "test" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match="no test images.*empty"):
        data.load_image_folder(tmp_path)


def test_class_missing_from_test_split_is_allowed(tmp_path):
    _folder(tmp_path / "train", {"cat": 2, "dog": 2})
    _folder(tmp_path / "test", {"cat": 1})
    ds = data.load_image_folder(tmp_path)
    assert ds.classes == ("cat", "dog") and ds.y_test.tolist() == [0]


def test_folder_with_train_but_no_test_is_an_error(tmp_path):
    _folder(tmp_path / "train", {"cat": 2, "dog": 2})
    with pytest.raises(DataError, match="has train/ but no test/"):
        data.load_image_folder(tmp_path)


def test_folder_arguments_are_checked():
    with pytest.raises(ValueError, match="test_fraction"):
        data.load_image_folder(".", test_fraction=1.0)
    with pytest.raises(TypeError, match="test_fraction"):
        data.load_image_folder(".", test_fraction="0.2")
    with pytest.raises(TypeError, match="size"):
        data.load_image_folder(".", size=32)
    with pytest.raises(ValueError, match="size"):
        data.load_image_folder(".", size=(0, 32))
    with pytest.raises(ValueError, match="fit.*'resize' is now called 'stretch'"):
        data.load_image_folder(".", size=(32, 32), fit="resize")
    with pytest.raises(TypeError, match="size"):
        data.read_image("any.png", size=(32.0, 32))


def test_unreadable_image_names_the_file(tmp_path):
    _folder(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DataError, match=r"broken\.png.*not a readable image"):
        data.load_image_folder(tmp_path)


# ------------------------------------------------------------------ 16-bit and other pixel formats
def _png16(path, arr):
    """A real 16-bit PNG written by hand (Pillow cannot write 16-bit RGB): grayscale (H, W) or RGB (H, W, 3)."""
    arr = np.asarray(arr, np.uint16)
    colour_type = 2 if arr.ndim == 3 else 0
    h, w = arr.shape[:2]
    raw = b"".join(b"\x00" + arr[i].astype(">u2").tobytes() for i in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# values that tell the high byte from clipping (0x00FF -> 255) and from rescaling (0x12FF -> 19)
SIXTEEN = np.array([[0x0000, 0x00FF, 0x0100, 0x12FF], [0x8000, 0xFF00, 0xFFFF, 0x7FFF]], np.uint16)


def test_16_bit_grayscale_png_keeps_the_high_byte(tmp_path):
    _png16(tmp_path / "a.png", SIXTEEN)
    from PIL import Image

    assert Image.open(tmp_path / "a.png").mode.startswith("I;16")  # it really is a 16-bit file
    got = data.read_image(tmp_path / "a.png")
    assert got.dtype == np.uint8 and got.tolist() == (SIXTEEN >> 8).tolist()
    assert got.tolist() == [[0, 0, 1, 18], [128, 255, 255, 127]]


def test_16_bit_rgb_png_keeps_the_high_byte(tmp_path):
    rgb = np.stack([SIXTEEN, SIXTEEN[::-1], SIXTEEN[:, ::-1]], axis=-1)
    _png16(tmp_path / "c" / "a.png", rgb)
    _png16(tmp_path / "c" / "b.png", rgb)
    ds = data.load_image_folder(tmp_path, test_fraction=0.5)
    np.testing.assert_array_equal(ds.x_train[0], (rgb >> 8).astype(np.uint8))


def test_32_bit_and_float_images_are_refused(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((3, 4), 70000, np.int32)).save(tmp_path / "i.tif")
    Image.fromarray(np.full((3, 4), 0.5, np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(DataError, match=r"i\.tif.*32-bit integer or float"):
        data.read_image(tmp_path / "i.tif")
    with pytest.raises(DataError, match=r"f\.tif.*32-bit integer or float"):
        data.read_image(tmp_path / "f.tif")


def test_grayscale_is_widened_when_the_folder_also_holds_colour(tmp_path):
    _png(tmp_path / "a" / "0.png", np.full((4, 4), 7, np.uint8))
    _png(tmp_path / "a" / "1.png", np.full((4, 4, 3), 9, np.uint8))
    _png(tmp_path / "b" / "0.png", np.full((4, 4), 5, np.uint8))
    _png(tmp_path / "b" / "1.png", np.full((4, 4), 6, np.uint8))
    ds = data.load_image_folder(tmp_path, test_fraction=0.5)
    assert ds.image_shape == (4, 4, 3)
    assert sorted({int(v) for v in np.concatenate([ds.x_train, ds.x_test]).ravel()}) == [5, 6, 7, 9]


# ------------------------------------------------------------------ mixed sizes
def _mixed(root):
    _png(root / "a" / "0.png", np.full((4, 6, 3), 10, np.uint8))
    _png(root / "a" / "1.png", np.full((8, 8, 3), 20, np.uint8))
    _png(root / "a" / "2.png", np.full((4, 6, 3), 30, np.uint8))
    _png(root / "b" / "0.png", np.arange(60, dtype=np.uint8).reshape(5, 4, 3))
    _png(root / "b" / "1.png", np.full((6, 10, 3), 50, np.uint8))


def test_mixed_sizes_give_a_ragged_dataset(tmp_path):
    _mixed(tmp_path)
    ds = data.load_image_folder(tmp_path, test_fraction=0.4)
    assert not ds.is_uniform
    assert isinstance(ds.x_train, list) and isinstance(ds.x_test, list)
    assert len(ds.x_train) == len(ds.y_train) == 3 and len(ds.x_test) == len(ds.y_test) == 2
    assert ds.image_shapes == ((4, 6, 3), (5, 4, 3), (6, 10, 3), (8, 8, 3))
    assert all(im.dtype == np.uint8 for im in ds.x_train + ds.x_test)
    small = ds.subset(2, 1)
    assert isinstance(small.x_train, list) and len(small.x_train) == 2 and len(small.x_test) == 1


def test_require_uniform_size_says_how_to_get_one_size(tmp_path):
    _mixed(tmp_path)
    ds = data.load_image_folder(tmp_path, test_fraction=0.4)
    with pytest.raises(DataError, match=r"4 different sizes \(4x6, 5x4, 6x10, 8x8\).*size=\(H, W\)"):
        ds.require_uniform_size()
    with pytest.raises(DataError, match="different sizes"):
        ds.image_shape  # noqa: B018 - the property refuses as well
    with pytest.raises(DataError, match="pass --image-size H,W"):
        ds.require_uniform_size(how="pass --image-size H,W")
    uniform = data.load_image_folder(tmp_path, test_fraction=0.4, size=(4, 4))
    assert uniform.require_uniform_size() == (4, 4, 3) == uniform.image_shape


def test_size_option_resizes_every_image_deterministically(tmp_path):
    from PIL import Image

    _mixed(tmp_path)
    ds = data.load_image_folder(tmp_path, test_fraction=0.4, size=(5, 7), fit="stretch")
    again = data.load_image_folder(tmp_path, test_fraction=0.4, size=(5, 7), fit="stretch")
    assert ds.is_uniform and ds.x_train.shape == (3, 5, 7, 3) and ds.x_test.shape == (2, 5, 7, 3)
    np.testing.assert_array_equal(ds.x_train, again.x_train)
    # resized with Pillow's bicubic filter to (H, W) = (5, 7)
    expect = np.asarray(Image.open(tmp_path / "b" / "0.png").resize((7, 5), Image.Resampling.BICUBIC))
    both = np.concatenate([ds.x_train, ds.x_test])
    assert any(np.array_equal(im, expect) for im in both)


def test_size_option_crop_scales_the_shorter_side_then_takes_the_centre(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (6, 10, 3), dtype=np.uint8)
    _png(tmp_path / "a.png", img)
    # same scale: a pure centre crop
    np.testing.assert_array_equal(data.read_image(tmp_path / "a.png", (6, 6), "crop"), img[:, 2:8])
    # the shorter side (6) scaled to 3: one bicubic resample of the centred 6x8 box
    expect = np.asarray(Image.fromarray(img).resize((4, 3), Image.Resampling.BICUBIC, box=(1, 0, 9, 6)))
    np.testing.assert_array_equal(data.read_image(tmp_path / "a.png", (3, 4), "crop"), expect)
    # larger than the image: scaled up, never refused, never stretched
    assert data.read_image(tmp_path / "a.png", (12, 12), "crop").shape == (12, 12, 3)


def test_size_option_pad_keeps_the_whole_image_on_black_borders(tmp_path):
    from PIL import Image

    img = np.full((6, 12, 3), 200, np.uint8)
    _png(tmp_path / "a.png", img)
    out = data.read_image(tmp_path / "a.png", (8, 8), "pad")
    # the longer side (12) scaled to 8: 4x8, centred vertically at row (8 - 4) // 2 = 2
    assert out.shape == (8, 8, 3)
    assert (out[:2] == 0).all() and (out[6:] == 0).all()
    np.testing.assert_array_equal(out[2:6], np.asarray(Image.fromarray(img).resize((8, 4), Image.Resampling.BICUBIC)))


def test_lists_of_one_size_are_stacked_and_arrays_of_two_sizes_refused():
    x = [np.full((4, 4, 1), i, np.uint8) for i in range(3)]
    ds = data.Dataset(x, [0, 1, 0], x[:1], [1])
    assert ds.is_uniform and ds.x_train.shape == (3, 4, 4, 1) and ds.x_test.shape == (1, 4, 4, 1)
    with pytest.raises(DataError, match="differ in shape.*pass lists"):
        data.Dataset(np.zeros((1, 4, 4, 1), np.uint8), [0], np.zeros((1, 5, 5, 1), np.uint8), [0])
    ragged = data.Dataset([np.zeros((4, 4, 1), np.uint8)], [0], [np.zeros((5, 5, 1), np.uint8)], [0])
    assert not ragged.is_uniform
    with pytest.raises(DataError, match="mix"):
        data.Dataset([np.zeros((4, 4, 1), np.uint8)], [0], [np.zeros((5, 5, 3), np.uint8)], [0])
    with pytest.raises(DataError, match=r"x_train\[0\] must be a uint8"):
        data.Dataset([np.zeros((4, 4, 1), np.float32)], [0], [np.zeros((5, 5, 1), np.uint8)], [0])
