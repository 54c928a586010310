"""The field's image data sets by name, each read from small files built here in its official layout."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import pickle
import tarfile

import numpy as np
import pytest

from helmholtz import data
from helmholtz._data import sources
from helmholtz.data import DataError

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402


def _jpeg(path, arr, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, format="JPEG", quality=95, **kw)


def _rng(seed=0):
    return np.random.default_rng(seed)


# ------------------------------------------------------------------ CIFAR-100
def _cifar100_folder(root, n_train=30, n_test=10):
    rng = _rng(1)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    out = {}
    for name, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        fine = list(rng.integers(0, 100, n))
        coarse = [f // 5 for f in fine]
        (folder / name).write_bytes(pickle.dumps({b"data": x, b"fine_labels": fine, b"coarse_labels": coarse, b"filenames": [b"f"] * n}))
        out[name] = (x, fine, coarse)
    meta = {b"fine_label_names": [f"fine{i}".encode() for i in range(100)], b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)]}
    (folder / "meta").write_bytes(pickle.dumps(meta))
    return out


def test_cifar100_fine_and_coarse_labels_from_the_official_pickles(tmp_path):
    raw = _cifar100_folder(tmp_path)
    ds = data.load_dataset("cifar100", tmp_path)
    assert ds.x_train.shape == (30, 32, 32, 3) and ds.num_classes == 100 and ds.classes[7] == "fine7"
    x, fine, _ = raw["train"]
    np.testing.assert_array_equal(ds.x_train[3], x[3].reshape(3, 32, 32).transpose(1, 2, 0))
    assert ds.y_train.tolist() == fine
    coarse = data.load_dataset("cifar100?labels=coarse", tmp_path)
    assert coarse.num_classes == 20 and coarse.y_test.tolist() == raw["test"][2] and coarse.name == "cifar100-coarse"
    with pytest.raises(ValueError, match="labels must be 'fine' or 'coarse'"):
        data.load_dataset("cifar100?labels=medium", tmp_path)


def test_cifar100_archive_is_checked_against_the_publishers_md5(tmp_path, monkeypatch):
    _cifar100_folder(tmp_path / "src")
    archive = tmp_path / "cifar-100-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-100-python", arcname="cifar-100-python")
    with pytest.raises(DataError, match="wrong MD5.*eb9058c3a382ffc7106e4002c42a8d85"):
        data.load_dataset("cifar100", tmp_path)
    monkeypatch.setattr(sources, "CIFAR100_MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    assert data.load_dataset("cifar100", tmp_path).x_test.shape == (10, 32, 32, 3)


def test_a_cifar100_pickle_naming_another_global_is_refused_unrun(tmp_path):
    _cifar100_folder(tmp_path)
    (tmp_path / "cifar-100-python" / "train").write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(DataError, match=r"cifar100: train in .* refused unread"):
        data.load_dataset("cifar100", tmp_path)


# ------------------------------------------------------------------ SVHN
def _svhn(root, n=12, seed=2):
    sio = pytest.importorskip("scipy.io")
    rng = _rng(seed)
    out = {}
    for name in ("train_32x32.mat", "test_32x32.mat"):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = rng.integers(1, 11, (n, 1)).astype(np.uint8)
        y[0] = 10
        sio.savemat(root / name, {"X": x, "y": y})
        out[name] = (x, y)
    return out


def test_svhn_reads_the_mat_files_and_label_10_is_the_digit_0(tmp_path, monkeypatch):
    raw = _svhn(tmp_path)
    with pytest.raises(DataError, match="wrong MD5"):  # made-up files are not the publisher's
        data.load_dataset("svhn", tmp_path)
    for f in ("train_32x32.mat", "test_32x32.mat"):
        monkeypatch.setitem(sources.SVHN_FILES, f, hashlib.md5((tmp_path / f).read_bytes()).hexdigest())
    ds = data.load_dataset("svhn", tmp_path)
    x, y = raw["train_32x32.mat"]
    assert ds.x_train.shape == (12, 32, 32, 3)
    np.testing.assert_array_equal(ds.x_train[5], x[..., 5])
    assert ds.y_train[0] == 0 and ds.y_train.tolist() == [int(v) % 10 for v in y[:, 0]]
    with pytest.raises(DataError, match="extra_32x32.mat not found"):
        data.load_dataset("svhn?extra=1", tmp_path)


def test_svhn_that_is_not_a_mat_file_is_named(tmp_path):
    (tmp_path / "train_32x32.mat").write_bytes(b"not matlab")
    (tmp_path / "test_32x32.mat").write_bytes(b"not matlab")
    with pytest.raises(DataError, match=r"train_32x32.mat' is not a readable MATLAB v5 file"):
        sources.load_svhn(tmp_path, verify=False)


# ------------------------------------------------------------------ Fashion-MNIST
def _idx(arr):
    return bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape) + arr.astype(np.uint8).tobytes()


def test_fashion_mnist_reads_its_idx_files_from_its_own_folder(tmp_path, monkeypatch):
    rng = _rng(3)
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (6, 28, 28)), "train-labels-idx1-ubyte": np.arange(6) % 10,
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (4, 28, 28)), "t10k-labels-idx1-ubyte": np.array([9, 0, 1, 2])}
    for stem, arr in arrays.items():
        (folder / f"{stem}.gz").write_bytes(gzip.compress(_idx(arr)))
    with pytest.raises(DataError, match="wrong MD5"):
        data.load_dataset("fashion-mnist", tmp_path)
    for stem in arrays:
        monkeypatch.setitem(sources.FASHION_MNIST_FILES, f"{stem}.gz", hashlib.md5((folder / f"{stem}.gz").read_bytes()).hexdigest())
    ds = data.load_dataset("fashion-mnist", tmp_path)
    assert ds.x_train.shape == (6, 28, 28, 1) and ds.classes[9] == "Ankle boot" and ds.y_test.tolist() == [9, 0, 1, 2]
    np.testing.assert_array_equal(ds.x_test[..., 0], arrays["t10k-images-idx3-ubyte"])


# ------------------------------------------------------------------ Tiny ImageNet
def _tiny(root):
    base = root / "tiny-imagenet-200"
    wnids = ["n02", "n01", "n03"]
    base.mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    rng = _rng(4)
    for w in wnids:
        for i in range(3):
            _jpeg(base / "train" / w / "images" / f"{w}_{i}.JPEG", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
        (base / "train" / w / f"{w}_boxes.txt").write_text("")
    gray = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    _jpeg(base / "val" / "images" / "val_0.JPEG", gray)
    _jpeg(base / "val" / "images" / "val_1.JPEG", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    (base / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn03\t0\t0\t10\t10\nval_1.JPEG\tn01\t1\t1\t9\t9\n")
    (base / "test" / "images").mkdir(parents=True)
    return base


def test_tiny_imagenet_val_labels_come_from_val_annotations(tmp_path):
    base = _tiny(tmp_path)
    train, test = data.open("tiny-imagenet", "train", data_dir=tmp_path), data.open("tiny-imagenet", "val", data_dir=tmp_path)
    assert train.classes == ("n01", "n02", "n03") and len(train) == 9 and train.image_shape == (64, 64, 3)
    assert test.labels.tolist() == [2, 0]
    x, y = test[:]
    assert x.shape == (2, 64, 64, 3)
    # the grayscale JPEG becomes RGB with R = G = B
    assert (x[0, ..., 0] == x[0, ..., 1]).all() and (x[0, ..., 1] == x[0, ..., 2]).all()
    expect = np.asarray(Image.open(base / "val" / "images" / "val_1.JPEG").convert("RGB"))
    np.testing.assert_array_equal(x[1], expect)
    (base / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99\t0\t0\t1\t1\n")
    with pytest.raises(DataError, match="line 1.*wnid"):
        data.open("tiny-imagenet", "test", data_dir=tmp_path)


# ------------------------------------------------------------------ downsampled ImageNet
@pytest.mark.parametrize("compressed", [False, True])
def test_imagenet32_batches_are_planar_and_labels_1_to_1000(tmp_path, compressed):
    rng = _rng(5)
    save = np.savez_compressed if compressed else np.savez
    batches = []
    for i in range(1, 11):
        x = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
        y = rng.integers(1, 1001, 3)
        y[0] = 1000
        save(tmp_path / f"train_data_batch_{i}.npz", data=x, labels=list(y), mean=np.zeros(3072))
        batches.append((x, y))
    save(tmp_path / "val_data.npz", data=rng.integers(0, 256, (2, 3072), dtype=np.uint8), labels=[1, 2])
    r = data.open("imagenet32", "train", data_dir=tmp_path)
    assert len(r) == 30 and r.image_shape == (32, 32, 3) and r.num_classes == 1000
    assert r.labels[3] == 999 and r.labels[4] == batches[1][1][1] - 1
    img, label = r[4]
    np.testing.assert_array_equal(img, batches[1][0][1].reshape(3, 32, 32).transpose(1, 2, 0))
    x, y = r[np.array([29, 0, 4])]
    np.testing.assert_array_equal(x[2], img)
    assert data.open("imagenet32", "test", data_dir=tmp_path).labels.tolist() == [0, 1]
    (tmp_path / "train_data_batch_7.npz").unlink()
    with pytest.raises(DataError, match="train_data_batch_7 missing"):
        data.open("imagenet32", data_dir=tmp_path)


# ------------------------------------------------------------------ ILSVRC-2012
def _cmyk_jpeg(path, rng):
    cmyk = Image.fromarray(rng.integers(0, 256, (20, 24, 4), dtype=np.uint8), mode="CMYK")
    path.parent.mkdir(parents=True, exist_ok=True)
    cmyk.save(path, format="JPEG", quality=95)


def _imagenet(root, flat_val):
    rng = _rng(6)
    wnids = ["n01440764", "n01443537"]
    for w in wnids:
        for i in range(2):
            _jpeg(root / "train" / w / f"{w}_{i}.JPEG", rng.integers(0, 256, (30 + i, 40, 3), dtype=np.uint8))
    _cmyk_jpeg(root / "train" / wnids[0] / "cmyk.JPEG", rng)
    _jpeg(root / "train" / wnids[1] / "gray.JPEG", rng.integers(0, 256, (25, 25), dtype=np.uint8))
    # ILSVRC-2012 holds a PNG named .JPEG: read by its content
    Image.fromarray(rng.integers(0, 256, (16, 18, 3), dtype=np.uint8)).save(root / "train" / wnids[1] / "png.JPEG", format="PNG")
    if not flat_val:
        for k, w in enumerate(wnids):
            _jpeg(root / "val" / w / f"ILSVRC2012_val_0000000{k + 1}.JPEG", rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
        return wnids
    for k in range(3):
        _jpeg(root / "val" / f"ILSVRC2012_val_0000000{k + 1}.JPEG", rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
    sio = pytest.importorskip("scipy.io")
    # the devkit's synsets: ILSVRC2012_IDs are not in wnid order (id 1 is the second wnid here)
    synsets = np.array([(1, wnids[1], "tench", 0), (2, wnids[0], "goldfish", 0)],
                       dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("num_children", "O")])
    buf = io.BytesIO()
    sio.savemat(buf, {"synsets": synsets})
    truth = b"2\n1\n1\n"
    archive = root / "ILSVRC2012_devkit_t12.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, blob in (("meta.mat", buf.getvalue()), ("ILSVRC2012_validation_ground_truth.txt", truth)):
            info = tarfile.TarInfo(f"ILSVRC2012_devkit_t12/data/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return wnids


def test_imagenet_train_converts_cmyk_grayscale_and_a_png_named_jpeg_to_rgb(tmp_path):
    wnids = _imagenet(tmp_path, flat_val=False)
    train = data.open("imagenet", "train", data_dir=tmp_path)
    assert train.classes == tuple(wnids) and len(train) == 7 and train.image_shape is None
    files = [str(f) for f in train.files]
    img, _ = train[files.index(str(tmp_path / "train" / wnids[0] / "cmyk.JPEG"))]
    expect = np.asarray(Image.open(tmp_path / "train" / wnids[0] / "cmyk.JPEG").convert("RGB"))
    assert img.shape == (20, 24, 3)
    np.testing.assert_array_equal(img, expect)
    gray, _ = train[files.index(str(tmp_path / "train" / wnids[1] / "gray.JPEG"))]
    assert gray.shape == (25, 25, 3) and (gray[..., 0] == gray[..., 2]).all()
    png, _ = train[files.index(str(tmp_path / "train" / wnids[1] / "png.JPEG"))]
    np.testing.assert_array_equal(png, np.asarray(Image.open(tmp_path / "train" / wnids[1] / "png.JPEG")))
    sized = data.open("imagenet", "train", data_dir=tmp_path, size=(16, 16))
    x, y = sized[:]
    assert x.shape == (7, 16, 16, 3) and y.tolist() == [0, 0, 0, 1, 1, 1, 1]
    val = data.open("imagenet", "val", data_dir=tmp_path)
    assert val.labels.tolist() == [0, 1]


def test_imagenet_flat_val_takes_its_labels_from_the_devkit(tmp_path):
    wnids = _imagenet(tmp_path, flat_val=True)
    val = data.open("imagenet", "test", data_dir=tmp_path)
    # ground truth IDs 2, 1, 1 -> wnids[0], wnids[1], wnids[1] -> labels 0, 1, 1
    assert val.labels.tolist() == [0, 1, 1] and val.classes == tuple(wnids)
    (tmp_path / "ILSVRC2012_devkit_t12.tar.gz").unlink()
    with pytest.raises(DataError, match="devkit"):
        data.open("imagenet", "test", data_dir=tmp_path)


# ------------------------------------------------------------------ Places365
def test_places365_reads_its_file_lists(tmp_path):
    rng = _rng(7)
    (tmp_path / "categories_places365.txt").write_text("/a/airfield 0\n/b/bakery/shop 1\n")
    (tmp_path / "places365_train_standard.txt").write_text("/a/airfield/00000001.jpg 0\n/b/bakery/shop/00000001.jpg 1\n")
    (tmp_path / "places365_val.txt").write_text("Places365_val_00000001.jpg 1\n")
    _jpeg(tmp_path / "data_256" / "a" / "airfield" / "00000001.jpg", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    _jpeg(tmp_path / "data_256" / "b" / "bakery" / "shop" / "00000001.jpg", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    _jpeg(tmp_path / "val_256" / "Places365_val_00000001.jpg", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    train = data.open("places365", data_dir=tmp_path, size=(16, 16))
    assert train.classes == ("a/airfield", "b/bakery/shop") and train.labels.tolist() == [0, 1]
    assert train[1][0].shape == (16, 16, 3)
    assert data.open("places365", "test", data_dir=tmp_path).labels.tolist() == [1]
    with pytest.raises(DataError, match="data_large"):
        data.open("places365?images=large", data_dir=tmp_path)


# ------------------------------------------------------------------ a user's .npz, named after the file
def test_an_npz_of_any_size_and_class_count_is_named_after_its_file(tmp_path):
    rng = _rng(8)
    path = tmp_path / "my_faces.npz"
    np.savez(path, x_train=rng.integers(0, 256, (5, 48, 40, 3), dtype=np.uint8), y_train=np.array([0, 1, 2, 11, 3]),
             x_test=rng.integers(0, 256, (2, 48, 40, 3), dtype=np.uint8), y_test=np.array([4, 5]))
    ds = data.load_dataset(str(path))
    assert ds.name == "my_faces" and ds.num_classes == 12 and ds.image_shape == (48, 40, 3)
    r = data.open(str(path), "test")
    assert r.name == "my_faces" and len(r) == 2


def test_an_npz_with_an_empty_test_split_is_a_data_error_naming_it(tmp_path):
    # issue 18: this gave "memoryview: cannot cast view with zeros in shape" when a sweep fingerprinted it
    np.savez(tmp_path / "cifar10.npz", x_train=np.zeros((4, 32, 32, 3), np.uint8), y_train=np.zeros(4, np.uint8),
             x_test=np.zeros((0, 32, 32, 3), np.uint8), y_test=np.zeros(0, np.uint8))
    with pytest.raises(DataError, match=r"x_test in .*cifar10.npz' holds no images"):
        data.load_cifar10(tmp_path)


# ------------------------------------------------------------------ hf:
def test_hf_saved_dataset_and_parquet_find_or_are_told_their_columns(tmp_path):
    datasets = pytest.importorskip("datasets")
    rng = _rng(9)

    def table(n, offset):
        images = [Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)) for _ in range(n)]
        feats = datasets.Features({"img": datasets.Image(), "fine": datasets.ClassLabel(names=["a", "b", "c"]), "other": datasets.Value("int64")})
        return datasets.Dataset.from_dict({"img": images, "fine": [(i + offset) % 3 for i in range(n)], "other": list(range(n))}, features=feats)

    dd = datasets.DatasetDict({"train": table(5, 0), "test": table(3, 1)})
    dd.save_to_disk(str(tmp_path / "saved"))
    r = data.open(f"hf:{tmp_path / 'saved'}", "train")
    assert r.classes == ("a", "b", "c") and r.labels.tolist() == [0, 1, 2, 0, 1]
    img, label = r[2]
    assert img.shape == (12, 10, 3) and label == 2
    assert data.open(f"hf:{tmp_path / 'saved'}", "test", size=(8, 8))[:][0].shape == (3, 8, 8, 3)
    (tmp_path / "pq" / "data").mkdir(parents=True)
    dd["train"].to_parquet(str(tmp_path / "pq" / "data" / "train-00000-of-00001.parquet"))
    dd["test"].to_parquet(str(tmp_path / "pq" / "data" / "test-00000-of-00001.parquet"))
    pq = data.open(f"hf:{tmp_path / 'pq'}?image=img&label=other", "test")
    assert pq.labels.tolist() == [0, 1, 2]
    with pytest.raises(DataError, match="'nope' is not a column"):
        data.open(f"hf:{tmp_path / 'saved'}?image=nope")


# ------------------------------------------------------------------ wds:
def _shard(path, samples):
    with tarfile.open(path, "w") as tar:
        for key, jpg, cls in samples:
            for ext, blob in (("jpg", jpg), ("cls", str(cls).encode())):
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))


def _jpeg_bytes(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def test_wds_shards_are_indexed_and_read_by_key(tmp_path):
    pytest.importorskip("webdataset")
    rng = _rng(10)
    arrays = [rng.integers(0, 256, (20, 20, 3), dtype=np.uint8) for _ in range(5)]
    _shard(tmp_path / "train-000000.tar", [(f"s{i:03d}", _jpeg_bytes(arrays[i]), i % 2) for i in range(3)])
    _shard(tmp_path / "train-000001.tar", [(f"s{i:03d}", _jpeg_bytes(arrays[i]), 2) for i in range(3, 4)])
    _shard(tmp_path / "val-000000.tar", [("v000", _jpeg_bytes(arrays[4]), 1)])
    (tmp_path / "classes.txt").write_text("zero\none\ntwo\n")
    train = data.open(f"wds:{tmp_path}", "train")
    assert len(train) == 4 and train.labels.tolist() == [0, 1, 0, 2] and train.classes == ("zero", "one", "two")
    img, _ = train[3]
    np.testing.assert_array_equal(img, np.asarray(Image.open(io.BytesIO(_jpeg_bytes(arrays[3])))))
    with pytest.raises(DataError, match=r"val-000001.tar' of the test split is missing"):
        data.open(f"wds:{tmp_path}/{{split}}-{{000000..000001}}.tar", "train")
    _shard(tmp_path / "val-000001.tar", [("v001", _jpeg_bytes(arrays[0]), 0)])
    pattern = data.open(f"wds:{tmp_path}/{{split}}-{{000000..000001}}.tar", "train")
    assert pattern.labels.tolist() == [0, 1, 0, 2]
    assert data.open(f"wds:{tmp_path}", "test").labels.tolist() == [1, 0]


# ------------------------------------------------------------------ bad files: named, or skipped and counted
def test_an_undecodable_file_is_named_or_skipped(tmp_path):
    _imagenet(tmp_path, flat_val=False)
    bad = tmp_path / "train" / "n01440764" / "broken.JPEG"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(DataError, match=r"broken\.JPEG' is not a readable image"):
        data.open("imagenet", data_dir=tmp_path, size=(8, 8))[:]
    r = data.open("imagenet", data_dir=tmp_path, size=(8, 8), skip_bad=True)
    x, _ = r[:]
    assert x.shape == (8, 8, 8, 3) and r.bad == [str(bad)]


def test_a_reader_is_a_torch_dataset_for_the_jpeg_transform(tmp_path):
    torch = pytest.importorskip("torch")
    from helmholtz import jpeg
    from helmholtz.transforms import JPEG

    rng = _rng(11)
    x = rng.integers(0, 256, (10, 16, 24, 3), dtype=np.uint8)
    np.savez(tmp_path / "set.npz", x_train=x, y_train=np.arange(10) % 3, x_test=x[:2], y_test=np.array([0, 1]))
    reader = data.open(str(tmp_path / "set.npz"), "train", transform=JPEG(20))
    assert isinstance(reader, data.Reader) and len(reader) == 10 and reader.classes == ("0", "1", "2")
    batches = list(torch.utils.data.DataLoader(reader, batch_size=4))
    images = torch.cat([b[0] for b in batches]).numpy()
    labels = torch.cat([b[1] for b in batches]).numpy()
    np.testing.assert_array_equal(images, jpeg.roundtrip(x, 20))
    np.testing.assert_array_equal(labels, np.arange(10) % 3)
    with pytest.raises(IndexError):
        reader[10]
    with pytest.raises(TypeError, match="reader is indexed by"):
        reader[np.array([True, False])]
    with pytest.raises(ValueError, match="split must be"):
        data.open(str(tmp_path / "set.npz"), "dev")
