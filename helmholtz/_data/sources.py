"""The image data sets of the field by name, read from their official files.

=================  ==========================================================  ==========
name               official files (in the data folder, ``$HELMHOLTZ_DATA``)     held
=================  ==========================================================  ==========
``cifar100``       ``cifar-100-python/{train,test,meta}`` pickles, their        memory
                   archive ``cifar-100-python.tar.gz`` (MD5 checked), or
                   ``cifar100.npz``; fine labels (``cifar100?labels=coarse``:
                   the 20 coarse ones)
``svhn``           ``train_32x32.mat``, ``test_32x32.mat`` (MATLAB v5;          memory
                   ``svhn?extra=1`` adds ``extra_32x32.mat`` to train); label
                   10 is the digit 0
``fashion-mnist``  the four IDX files (``.gz``, MD5 checked) in                 memory
                   ``fashion-mnist/``, or ``fashion-mnist.npz``
``tiny-imagenet``  ``tiny-imagenet-200/``: ``wnids.txt``,                       files
                   ``train/<wnid>/images/*.JPEG``, ``val/images`` with
                   ``val/val_annotations.txt`` (the test split)
``imagenet32``,    ``train_data_batch_1..10`` and ``val_data`` (``.npz``,       batches
``imagenet64``     ``data`` planar like CIFAR, ``labels`` 1..1000), in the
                   folder or in ``Imagenet32_train_npz/`` etc.
``imagenet``       ILSVRC-2012: ``train/<wnid>/*.JPEG``; ``val/`` as class      files
                   folders, or flat with the devkit's ground truth
                   (``ILSVRC2012_devkit_t12/`` or its ``.tar.gz``)
``places365``      Places365-Standard: ``categories_places365.txt``,            files
                   ``places365_train_standard.txt``, ``places365_val.txt``,
                   images in ``data_256/`` + ``val_256/`` (or ``data_large/``
                   + ``val_large/``; ``places365?images=large``)
=================  ==========================================================  ==========

"memory": loaded whole as a :class:`~helmholtz.data.Dataset`; "files" and
"batches": read lazily through readers, so memory stays flat (prepare them
with ``helmholtz prepare`` for sweeps). Photo data sets are RGB: grayscale,
CMYK and PNG-named-JPEG files are converted by the rules of
:mod:`helmholtz._data.decode`. With ``download=True``, ``cifar100``, ``svhn``
and ``fashion-mnist`` are fetched from their publishers and checked against
the publishers' MD5s; ImageNet, its downsampled versions, Tiny ImageNet and
Places365 are distributed under terms a user accepts on the publisher's site,
so they are placed by hand.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._extras import require
from ..errors import DataError
from .checks import integer_labels
from .images import IMAGE_SUFFIXES, Dataset, download_file, load_npz, md5_of, read_file, read_idx
from .paths import resolve_data_dir
from .readers import FileReader, Reader, ReaderDataset, check_split, flag_option, reader_options
from .safety import check_expanded_size, gunzip, load_cifar_pickle, read_tar_members

__all__ = [
    "CIFAR100_URL", "CIFAR100_MD5", "SVHN_FILES", "FASHION_MNIST_FILES",
    "load_cifar100", "load_svhn", "load_fashion_mnist", "load_tiny_imagenet", "load_imagenet", "load_places365",
    "load_downsampled_imagenet", "load_npz_file", "ReaderDataset", "NpzBatchReader",
]

CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
#: MD5 of ``cifar-100-python.tar.gz`` as published on the CIFAR page.
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
#: file -> MD5 (as torchvision's SVHN class lists them for the publisher's files).
SVHN_FILES = {
    "train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373",
    "test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3",
    "extra_32x32.mat": "a93ce644f1a588dc4d68dda5feec44a7",
}
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
#: ``.gz`` file -> MD5, from the Fashion-MNIST README.
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def _root(data_dir: Any, download: bool) -> Path:
    if download and data_dir is not None:
        return Path(data_dir).expanduser()
    return resolve_data_dir(data_dir)


def _locate(root: Path, folder: str, marker: str) -> Path:
    """``root/folder`` if it holds ``marker``, else ``root`` itself if it does (the user pointed at the folder)."""
    for cand in (root / folder, root):
        if (cand / marker).exists():
            return cand
    return root / folder


# ----------------------------------------------------------------------------- CIFAR-100
def _cifar100_pickle(raw: bytes, where: str) -> dict:
    d = load_cifar_pickle(raw, where, "cifar100")
    if not isinstance(d, dict):
        raise DataError(f"cifar100: {where} is not a CIFAR-100 pickle; expected a dict")
    return d


def _cifar100_split(raw: bytes, where: str, key: bytes, classes: int) -> tuple[np.ndarray, np.ndarray]:
    d = _cifar100_pickle(raw, where)
    if b"data" not in d or key not in d:
        raise DataError(f"cifar100: {where} is not a CIFAR-100 split; expected b'data' and {key!r}")
    x = d[b"data"]
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072:
        got = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise DataError(f"cifar100: {where} has data {got}; expected uint8 (N, 3072)")
    if x.nbytes > len(raw):
        raise DataError(f"cifar100: {where} declares more pixels than the pickle holds; it is crafted or corrupt")
    y = integer_labels(np.asarray(d[key]), x.shape[0], f"cifar100: {where}: {key.decode()}", classes)
    if x.shape[0] == 0:
        raise DataError(f"cifar100: {where} holds no images")
    return np.ascontiguousarray(x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)), y


def load_cifar100(data_dir: Any = None, *, labels: str = "fine", download: bool = False, verify: bool = True) -> Dataset:
    """CIFAR-100: 50,000 train and 10,000 test 32x32 RGB images, 100 fine (or 20 coarse) classes.

    Parameters
    ----------
    data_dir : path, optional
        Holding ``cifar100.npz``, ``cifar-100-python/`` or ``cifar-100-python.tar.gz``.
    labels : {"fine", "coarse"}
    download : bool
        Fetch the official archive (MD5 checked) when none of those is there.
    verify : bool
        Check the archive's MD5 before reading it.

    Raises
    ------
    ValueError
        ``labels`` not fine or coarse.
    DataError
        Missing or corrupt files, a wrong checksum, a refused pickle (read by
        the same restricted unpickler as CIFAR-10's), labels out of range.
    """
    if labels not in ("fine", "coarse"):
        raise ValueError(f"labels must be 'fine' or 'coarse'; got {labels!r}")
    root = _root(data_dir, download)
    count = 100 if labels == "fine" else 20
    npz = root / "cifar100.npz"
    if npz.is_file() and labels == "fine":
        return load_npz(npz, "cifar100", (), image_shape=(32, 32, 3))
    folder = root / "cifar-100-python"
    archive = root / "cifar-100-python.tar.gz"
    if not folder.is_dir() and not archive.is_file() and download:
        download_file([CIFAR100_URL], archive, CIFAR100_MD5)
    if folder.is_dir():
        def read(member: str) -> bytes:
            p = folder / member
            if not p.is_file():
                raise DataError(f"cifar100: {str(p)!r} is missing; expected train, test and meta")
            return read_file(p, "cifar100")
        where = str(folder)
    elif archive.is_file():
        if verify and md5_of(archive) != CIFAR100_MD5:
            raise DataError(f"cifar100: {str(archive)!r} has the wrong MD5 (expected {CIFAR100_MD5}); delete it and download again")
        members = read_tar_members(archive, [f"cifar-100-python/{m}" for m in ("train", "test", "meta")], "cifar100")
        read = lambda m: members[f"cifar-100-python/{m}"]  # noqa: E731
        where = str(archive)
    else:
        raise DataError(f"cifar100: none of cifar100.npz, cifar-100-python/ or cifar-100-python.tar.gz in {str(root)!r}; "
                        f"download {CIFAR100_URL} there (or pass download=True)")
    key = b"fine_labels" if labels == "fine" else b"coarse_labels"
    meta = _cifar100_pickle(read("meta"), f"meta in {where}")
    names_key = b"fine_label_names" if labels == "fine" else b"coarse_label_names"
    names = meta.get(names_key)
    if not isinstance(names, list) or len(names) != count:
        raise DataError(f"cifar100: meta in {where} lacks {count} {names_key.decode()}")
    classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    x_tr, y_tr = _cifar100_split(read("train"), f"train in {where}", key, count)
    x_te, y_te = _cifar100_split(read("test"), f"test in {where}", key, count)
    return Dataset(x_tr, y_tr, x_te, y_te, "cifar100" if labels == "fine" else "cifar100-coarse", classes, where)


# ----------------------------------------------------------------------------- SVHN
def _read_mat(path: Path, what: str) -> tuple[np.ndarray, np.ndarray]:
    sio = require("scipy.io", extra="data", purpose=f"reading {what}'s .mat files")
    check_expanded_size(path.stat().st_size, path, "the file")
    try:
        mat = sio.loadmat(str(path), variable_names=["X", "y"])
    except (ValueError, TypeError, OSError, EOFError, KeyError, IndexError, NotImplementedError, MemoryError, sio.matlab.MatReadError) as exc:
        raise DataError(f"{what}: {str(path)!r} is not a readable MATLAB v5 file, truncated or corrupt ({type(exc).__name__}: {exc})") from exc
    if "X" not in mat or "y" not in mat:
        raise DataError(f"{what}: {str(path)!r} lacks X or y; expected the cropped-digits arrays")
    x, y = mat["X"], mat["y"]
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise DataError(f"{what}: X in {str(path)!r} is {x.dtype} {x.shape}; expected uint8 (32, 32, 3, N)")
    y = np.asarray(y).reshape(-1)
    if not np.issubdtype(y.dtype, np.integer) and not (np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0)):
        raise DataError(f"{what}: y in {str(path)!r} is not whole numbers")
    y = y.astype(np.int64)
    if y.shape[0] != x.shape[3]:
        raise DataError(f"{what}: {str(path)!r} holds {x.shape[3]} images and {y.shape[0]} labels")
    if y.size and (y.min() < 1 or y.max() > 10):
        raise DataError(f"{what}: y in {str(path)!r} holds labels outside 1..10 (10 stands for the digit 0)")
    return np.ascontiguousarray(x.transpose(3, 0, 1, 2)), np.where(y == 10, 0, y)


def load_svhn(data_dir: Any = None, *, extra: Any = False, download: bool = False, verify: bool = True) -> Dataset:
    """SVHN cropped digits: 73,257 train (+531,131 extra) and 26,032 test 32x32 RGB images; label 10 -> digit 0.

    Raises
    ------
    DataError
        Missing files, a wrong MD5 (``verify``), a file that is not the
        expected MATLAB arrays.
    """
    extra = flag_option(extra, "extra")
    root = _root(data_dir, download)
    folder = _locate(root, "svhn", "train_32x32.mat")
    names = ["train_32x32.mat", "test_32x32.mat"] + (["extra_32x32.mat"] if extra else [])
    for f in names:
        path = folder / f
        if not path.is_file():
            if not download:
                raise DataError(f"svhn: {f} not found in {str(folder)!r}; download {SVHN_URL}{f} there (or pass download=True)")
            download_file([SVHN_URL + f], path, SVHN_FILES[f])
        elif verify and md5_of(path) != SVHN_FILES[f]:
            raise DataError(f"svhn: {str(path)!r} has the wrong MD5 (expected {SVHN_FILES[f]}); delete it and download again")
    x_tr, y_tr = _read_mat(folder / "train_32x32.mat", "svhn")
    x_te, y_te = _read_mat(folder / "test_32x32.mat", "svhn")
    if extra:
        x_ex, y_ex = _read_mat(folder / "extra_32x32.mat", "svhn")
        x_tr, y_tr = np.concatenate([x_tr, x_ex]), np.concatenate([y_tr, y_ex])
    return Dataset(x_tr, y_tr, x_te, y_te, "svhn", tuple(str(d) for d in range(10)), str(folder))


# ----------------------------------------------------------------------------- Fashion-MNIST
def load_fashion_mnist(data_dir: Any = None, *, download: bool = False, verify: bool = True) -> Dataset:
    """Fashion-MNIST: 60,000 train and 10,000 test 28x28 grayscale images (C = 1), 10 classes.

    Reads ``fashion-mnist.npz`` or the four IDX files (plain or ``.gz``) from
    ``DATA/fashion-mnist/`` (MNIST's files share their names, so they live in
    a folder of their own; ``data_dir`` may also be that folder). The
    ``.gz`` files' MD5s are the ones the Fashion-MNIST README publishes.
    """
    root = _root(data_dir, download)
    npz = root / "fashion-mnist.npz"
    if npz.is_file():
        return load_npz(npz, "fashion-mnist", FASHION_MNIST_CLASSES, image_shape=(28, 28, 1))
    folder = _locate(root, "fashion-mnist", "train-images-idx3-ubyte.gz")
    if not (folder / "train-images-idx3-ubyte.gz").is_file() and (root / "fashion-mnist" / "train-images-idx3-ubyte").is_file():
        folder = root / "fashion-mnist"
    arrays = {}
    for gz, md5 in FASHION_MNIST_FILES.items():
        stem = gz[:-3]
        if download and not (folder / gz).is_file() and not (folder / stem).is_file():
            download_file([FASHION_MNIST_URL + gz], folder / gz, md5)
        if (folder / gz).is_file():
            if verify and md5_of(folder / gz) != md5:
                raise DataError(f"fashion-mnist: {str(folder / gz)!r} has the wrong MD5 (expected {md5})")
            raw = gunzip(folder / gz, "fashion-mnist")
        elif (folder / stem).is_file():
            raw = read_file(folder / stem, "fashion-mnist")
        else:
            raise DataError(f"fashion-mnist: neither fashion-mnist.npz nor {stem}[.gz] in {str(folder)!r} (pass download=True to fetch)")
        images = "images" in stem
        arrays[stem] = read_idx(raw, str(folder / gz), 3 if images else 1, "fashion-mnist")
    out = []
    for prefix in ("train", "t10k"):
        x = arrays[f"{prefix}-images-idx3-ubyte"]
        if x.shape[1:] != (28, 28):
            raise DataError(f"fashion-mnist: {prefix} images in {str(folder)!r} are {x.shape[1:]}; expected (28, 28)")
        y = integer_labels(arrays[f"{prefix}-labels-idx1-ubyte"], x.shape[0], f"fashion-mnist: {prefix}-labels in {str(folder)!r}", 10)
        out += [np.ascontiguousarray(x[..., None]), y]
    return Dataset(*out, "fashion-mnist", FASHION_MNIST_CLASSES, str(folder))


# ----------------------------------------------------------------------------- a user's .npz
def load_npz_file(path: Any, data_dir: Any = None) -> Dataset:
    """An ``.npz`` holding ``x_train, y_train, x_test, y_test`` of any size and class count, named after the file."""
    p = Path(path).expanduser()
    if not p.is_absolute() and not p.is_file() and data_dir is not None:
        p = Path(data_dir).expanduser() / p
    return load_npz(p, p.stem)


# ----------------------------------------------------------------------------- folders of JPEGs
def _files(folder: Path) -> list[Path]:
    with os.scandir(folder) as entries:
        names = [e.name for e in entries if not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES and e.is_file()]
    return [folder / name for name in sorted(names)]


def load_tiny_imagenet(data_dir: Any = None, *, size: Any = None, fit: str = "crop", skip_bad: Any = False, exact: Any = False) -> ReaderDataset:
    """Tiny ImageNet (200 classes, 64x64): train from ``train/<wnid>/images``, test from ``val/`` and ``val_annotations.txt``.

    Classes are the sorted wnids of ``wnids.txt``; ``test/`` has no labels and
    is not read. Images are decoded on access (RGB; the set holds grayscale
    JPEGs); ``size`` defaults to 64x64, the set's own.

    Raises
    ------
    DataError
        A missing ``wnids.txt``, class folder or annotation file, an
        annotation naming an unknown wnid or a missing file.
    """
    root = _locate(resolve_data_dir(data_dir), "tiny-imagenet-200", "wnids.txt")
    wnids_file = root / "wnids.txt"
    if not wnids_file.is_file():
        raise DataError(f"tiny-imagenet: no tiny-imagenet-200/wnids.txt in {str(root.parent)!r} (unzip tiny-imagenet-200.zip there)")
    wnids = sorted({w.strip() for w in wnids_file.read_text().split() if w.strip()})
    index = {w: i for i, w in enumerate(wnids)}
    train_files, train_labels = [], []
    for w in wnids:
        folder = root / "train" / w / "images"
        if not folder.is_dir():
            raise DataError(f"tiny-imagenet: {str(folder)!r} is missing; every wnid of wnids.txt needs train/<wnid>/images")
        files = _files(folder)
        train_files += files
        train_labels += [index[w]] * len(files)
    ann = root / "val" / "val_annotations.txt"
    if not ann.is_file():
        raise DataError(f"tiny-imagenet: {str(ann)!r} is missing; the val split's labels come from it")
    val_files, val_labels = [], []
    for n, line in enumerate(ann.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 2 or parts[1] not in index:
            raise DataError(f"tiny-imagenet: {str(ann)!r} line {n}: expected 'file<TAB>wnid<TAB>box', with a wnid of wnids.txt; got {line!r:.80}")
        f = root / "val" / "images" / parts[0]
        if not f.is_file():
            raise DataError(f"tiny-imagenet: {str(ann)!r} line {n} names {parts[0]}, which is not in {str(f.parent)!r}")
        val_files.append(f)
        val_labels.append(index[parts[1]])
    opts = reader_options(size, fit, skip_bad, exact)
    opts["size"] = opts["size"] or (64, 64)
    common = dict(name="tiny-imagenet", classes=wnids, source=str(root), mode="RGB", **opts)
    return ReaderDataset(FileReader(train_files, train_labels, split="train", **common), FileReader(val_files, val_labels, split="test", **common),
                         name="tiny-imagenet", classes=wnids, source=str(root))


# ----------------------------------------------------------------------------- ILSVRC-2012
_DEVKIT = "ILSVRC2012_devkit_t12"


def _devkit_files(root: Path) -> tuple[bytes, bytes]:
    """(meta.mat, validation ground truth) from the unpacked devkit or its archive."""
    for folder in (root / _DEVKIT / "data", root / "devkit" / "data"):
        if (folder / "meta.mat").is_file() and (folder / "ILSVRC2012_validation_ground_truth.txt").is_file():
            return read_file(folder / "meta.mat", "imagenet"), read_file(folder / "ILSVRC2012_validation_ground_truth.txt", "imagenet")
    archive = root / f"{_DEVKIT}.tar.gz"
    if archive.is_file():
        members = read_tar_members(archive, [f"{_DEVKIT}/data/meta.mat", f"{_DEVKIT}/data/ILSVRC2012_validation_ground_truth.txt"], "imagenet")
        return members[f"{_DEVKIT}/data/meta.mat"], members[f"{_DEVKIT}/data/ILSVRC2012_validation_ground_truth.txt"]
    raise DataError(
        f"imagenet: val/ in {str(root)!r} is flat, so its labels come from the devkit: put {_DEVKIT}.tar.gz "
        f"(or the unpacked {_DEVKIT}/) beside train/ and val/, or sort val/ into class folders"
    )


def _devkit_val_wnids(root: Path) -> list[str]:
    """The wnid of each flat val image, in file-name order, from the devkit's ILSVRC2012 IDs."""
    meta_raw, truth_raw = _devkit_files(root)
    sio = require("scipy.io", extra="data", purpose="reading the ImageNet devkit's meta.mat")
    try:
        synsets = sio.loadmat(io.BytesIO(meta_raw), squeeze_me=True)["synsets"]
        ids = np.atleast_1d(synsets["ILSVRC2012_ID"]).astype(np.int64)
        wnids = [str(w) for w in np.atleast_1d(synsets["WNID"])]
    except (ValueError, TypeError, KeyError, IndexError, OSError, sio.matlab.MatReadError) as exc:
        raise DataError(f"imagenet: the devkit's meta.mat is not readable or lacks synsets ILSVRC2012_ID/WNID ({type(exc).__name__}: {exc})") from exc
    by_id = dict(zip(ids.tolist(), wnids))
    out = []
    for n, line in enumerate(truth_raw.decode("ascii", "replace").split(), 1):
        if not line.isdigit() or int(line) not in by_id:
            raise DataError(f"imagenet: the devkit's ground truth line {n} is {line!r}, not an ILSVRC2012_ID of meta.mat")
        out.append(by_id[int(line)])
    return out


def load_imagenet(data_dir: Any = None, *, size: Any = None, fit: str = "crop", skip_bad: Any = False, exact: Any = False) -> ReaderDataset:
    """ILSVRC-2012: ``train/<wnid>/*.JPEG`` (1000 classes) and ``val/`` (the test split), decoded on access as RGB.

    ``val/`` is either sorted into ``val/<wnid>/`` folders, or flat
    (``ILSVRC2012_val_00000001.JPEG`` ...) with its labels from the devkit:
    ``data/ILSVRC2012_validation_ground_truth.txt`` holds an ILSVRC2012_ID per
    image in file-name order (IDs are not the wnids' sorted order), and
    ``data/meta.mat`` maps IDs to wnids. Classes are the sorted wnids of
    ``train/``. The set holds CMYK and grayscale JPEGs and a PNG named
    ``.JPEG``: all become RGB by the decode rules.
    """
    base = resolve_data_dir(data_dir)
    root = _locate(base, "imagenet", "train")
    train_dir, val_dir = root / "train", root / "val"
    if not train_dir.is_dir() or not val_dir.is_dir():
        raise DataError(f"imagenet: expected train/<wnid>/*.JPEG and val/ in {str(root)!r} (the ILSVRC-2012 layout)")
    wnids = sorted(p.name for p in train_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not wnids:
        raise DataError(f"imagenet: no class folders in {str(train_dir)!r}")
    index = {w: i for i, w in enumerate(wnids)}
    train_files, train_labels = [], []
    for w in wnids:
        files = _files(train_dir / w)
        train_files += files
        train_labels += [index[w]] * len(files)
    sub = [p for p in val_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    val_files, val_labels = [], []
    if sub:
        unknown = sorted(p.name for p in sub if p.name not in index)
        if unknown:
            raise DataError(f"imagenet: val/ class folder(s) {', '.join(unknown[:5])} are not classes of train/")
        for w in sorted(p.name for p in sub):
            files = _files(val_dir / w)
            val_files += files
            val_labels += [index[w]] * len(files)
    else:
        files = _files(val_dir)
        truth = _devkit_val_wnids(root if (root / f"{_DEVKIT}.tar.gz").exists() or (root / _DEVKIT).exists() else base)
        if len(truth) != len(files):
            raise DataError(f"imagenet: val/ holds {len(files)} images; the devkit's ground truth has {len(truth)} lines")
        missing = sorted({w for w in truth if w not in index})
        if missing:
            raise DataError(f"imagenet: the devkit's ground truth names wnid(s) {', '.join(missing[:5])} that train/ lacks")
        val_files, val_labels = files, [index[w] for w in truth]
    opts = reader_options(size, fit, skip_bad, exact)
    common = dict(name="imagenet", classes=wnids, source=str(root), mode="RGB", **opts)
    return ReaderDataset(FileReader(train_files, train_labels, split="train", **common), FileReader(val_files, val_labels, split="test", **common),
                         name="imagenet", classes=wnids, source=str(root))


# ----------------------------------------------------------------------------- Places365
def load_places365(data_dir: Any = None, *, images: str = "256", size: Any = None, fit: str = "crop", skip_bad: Any = False,
                   exact: Any = False) -> ReaderDataset:
    """Places365-Standard from its file lists (train from ``places365_train_standard.txt``, test = val).

    ``categories_places365.txt`` holds ``/a/airfield 0`` lines (class names are
    the paths without the leading ``/``); ``places365_train_standard.txt``
    ``/a/airfield/00000001.jpg 0`` lines, relative to ``data_256/`` (or
    ``data_large/``); ``places365_val.txt`` ``Places365_val_00000001.jpg 165``
    lines, relative to ``val_256/`` (or ``val_large/``).
    """
    if images not in ("256", "large"):
        raise ValueError(f"images must be '256' or 'large'; got {images!r}")
    root = _locate(resolve_data_dir(data_dir), "places365", "categories_places365.txt")

    def lines(name: str) -> list[tuple[str, int]]:
        path = root / name
        if not path.is_file():
            raise DataError(f"places365: {name} is missing in {str(root)!r} (it comes in filelist_places365-standard.tar)")
        out = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or not parts[1].isdigit():
                raise DataError(f"places365: {str(path)!r} line {n}: expected 'path label'; got {line!r:.80}")
            out.append((parts[0], int(parts[1])))
        return out

    cats = lines("categories_places365.txt")
    classes = [""] * len(cats)
    for name, k in cats:
        if k >= len(cats) or classes[k]:
            raise DataError(f"places365: categories_places365.txt has a repeated or out-of-range label {k}")
        classes[k] = name.lstrip("/")
    train_dir, val_dir = root / f"data_{images}", root / f"val_{images}"
    for d in (train_dir, val_dir):
        if not d.is_dir():
            raise DataError(f"places365: {str(d)!r} is missing (unpack the {images} images there)")
    tr = lines("places365_train_standard.txt")
    va = lines("places365_val.txt")
    for what, entries in (("places365_train_standard.txt", tr), ("places365_val.txt", va)):
        bad = [k for _, k in entries if k >= len(classes)]
        if bad:
            raise DataError(f"places365: {what} holds label {bad[0]}, outside 0..{len(classes) - 1}")
    opts = reader_options(size, fit, skip_bad, exact)
    common = dict(name="places365", classes=classes, source=str(root), mode="RGB", **opts)
    return ReaderDataset(
        FileReader([train_dir / p.lstrip("/") for p, _ in tr], [k for _, k in tr], split="train", **common),
        FileReader([val_dir / p.lstrip("/") for p, _ in va], [k for _, k in va], split="test", **common),
        name="places365", classes=classes, source=str(root),
    )


# ----------------------------------------------------------------------------- downsampled ImageNet
class NpzBatchReader(Reader):
    """The downsampled-ImageNet batches of one split: ``data`` rows (planar like CIFAR) read on access.

    A stored (uncompressed) ``data`` member is memory-mapped from inside the
    ``.npz``; a compressed one is decompressed one batch at a time, and only
    the last batch read is kept.
    """

    def __init__(self, files: list[Path], side: int, *, name: str, split: str, classes: Sequence[str], source: str) -> None:
        self.files, self.side = files, side
        self.name, self.split, self.classes, self.source = name, split, tuple(classes), source
        labels, counts = [], []
        for f in files:
            z = _npz_member(f, "labels", name)
            y = np.asarray(z).reshape(-1)
            y = integer_labels(y, y.shape[0], f"{name}: labels in {str(f)!r}")
            if y.size and (y.min() < 1 or y.max() > 1000):
                raise DataError(f"{name}: labels in {str(f)!r} must be 1..1000 (the published convention)")
            labels.append(y - 1)
            counts.append(y.shape[0])
        self.labels = np.concatenate(labels) if labels else np.zeros(0, np.int64)
        self._starts = np.cumsum([0] + counts)
        self._cache: tuple[int, np.ndarray] | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.side, self.side, 3)

    def _batch(self, b: int) -> np.ndarray:
        if self._cache is not None and self._cache[0] == b:
            return self._cache[1]
        data = _npz_member(self.files[b], "data", self.name, mmap=True)
        want = self.side * self.side * 3
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape != (self._starts[b + 1] - self._starts[b], want):
            raise DataError(f"{self.name}: data in {str(self.files[b])!r} is {data.dtype} {data.shape}; expected uint8 (N, {want}) matching its labels")
        self._cache = (b, data)
        return data

    def _read(self, indices: np.ndarray) -> np.ndarray:
        out = np.empty((indices.size, *self.image_shape), np.uint8)
        which = np.searchsorted(self._starts, indices, side="right") - 1
        for b in np.unique(which):
            rows = self._batch(int(b))[indices[which == b] - self._starts[b]]
            out[which == b] = rows.reshape(-1, 3, self.side, self.side).transpose(0, 2, 3, 1)
        return out

    def _identity(self) -> str:
        return "|".join(f"{f}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in self.files)


def _npz_member(path: Path, key: str, what: str, mmap: bool = False) -> np.ndarray:
    """Array ``key`` of an ``.npz``: memory-mapped when stored uncompressed (and ``mmap``), else read (size-checked)."""
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(f"{key}.npy")
            if mmap and info.compress_type == zipfile.ZIP_STORED:
                from .prepared import read_npy_header

                with zf.open(info) as fp:
                    shape, fortran, dtype = read_npy_header(fp)
                    header = fp.tell()
                with open(path, "rb") as raw:  # the member's data start: its local header, name and extra field
                    raw.seek(info.header_offset)
                    local = raw.read(30)
                    start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
                if not fortran and not np.dtype(dtype).hasobject:
                    return np.memmap(path, dtype=dtype, mode="r", offset=start + header, shape=tuple(shape))
    except KeyError:
        raise DataError(f"{what}: {str(path)!r} lacks array {key}; expected a downsampled-ImageNet batch (data, labels)") from None
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DataError(f"{what}: {str(path)!r} is not a readable .npz ({type(exc).__name__}: {exc})") from exc
    from .safety import read_npz

    return read_npz(path, (key,), what=what)[key]


def load_downsampled_imagenet(data_dir: Any = None, *, side: int = 32) -> ReaderDataset:
    """Downsampled ImageNet (Chrabaszcz, Loshchilov, Hutter 2017) at ``side`` x ``side``: batches read on access.

    Train is ``train_data_batch_1`` .. ``_10`` in order, test is ``val_data``
    (each with or without ``.npz``), found in the data folder, in
    ``imagenet{side}/``, or in the published archives' folders
    (``Imagenet{side}_train_npz/``, ``Imagenet{side}_val_npz/``). Labels 1..1000
    become 0..999; class ``k`` is named by line ``k + 1`` of ``map_clsloc.txt``
    when that file (from the ILSVRC devkit) is there, else ``"1"`` .. ``"1000"``.
    """
    name = f"imagenet{side}"
    base = resolve_data_dir(data_dir)
    folders = [base, base / name, base / f"Imagenet{side}_train_npz", base / f"Imagenet{side}_val_npz",
               base / name / f"Imagenet{side}_train_npz", base / name / f"Imagenet{side}_val_npz"]

    def find(stem: str) -> Path | None:
        for folder in folders:
            for cand in (folder / f"{stem}.npz", folder / stem):
                if cand.is_file():
                    return cand
        return None

    train = [find(f"train_data_batch_{i}") for i in range(1, 11)]
    val = find("val_data")
    present = [f for f in train if f is not None]
    if not present or val is None:
        raise DataError(f"{name}: expected train_data_batch_1..10 and val_data (.npz) in {str(base)!r} or {name}/ "
                        f"(from Imagenet{side}_train_npz.zip and Imagenet{side}_val_npz.zip)")
    if len(present) != 10:
        missing = [f"train_data_batch_{i + 1}" for i, f in enumerate(train) if f is None]
        raise DataError(f"{name}: {', '.join(missing)} missing beside {str(present[0].parent)!r}")
    classes = [str(k) for k in range(1, 1001)]
    for folder in folders:
        m = folder / "map_clsloc.txt"
        if m.is_file():
            rows = [line.split() for line in m.read_text().splitlines() if line.strip()]
            if len(rows) == 1000 and all(len(r) >= 3 for r in rows):
                classes = [r[2] for r in sorted(rows, key=lambda r: int(r[1]))]
            break
    common = dict(name=name, classes=classes, source=str(present[0].parent))
    return ReaderDataset(NpzBatchReader(present, side, split="train", **common), NpzBatchReader([val], side, split="test", **common),
                         name=name, classes=classes, source=str(present[0].parent))


def _is_npz_path(name: str) -> bool:
    return bool(re.search(r"\.npz$", name, re.IGNORECASE))


def _imagenet32(data_dir: Any = None) -> ReaderDataset:
    return load_downsampled_imagenet(data_dir, side=32)


def _imagenet64(data_dir: Any = None) -> ReaderDataset:
    return load_downsampled_imagenet(data_dir, side=64)


# The specs helmholtz declares as entry points (group "helmholtz.datasets").
from .registry import DatasetSpec  # noqa: E402

CIFAR100 = DatasetSpec("cifar100", load_cifar100, "image", "quality", "CIFAR-100, 32x32 RGB, 100 classes (?labels=coarse: 20)", downloadable=True)
SVHN = DatasetSpec("svhn", load_svhn, "image", "quality", "SVHN cropped digits, 32x32 RGB, 10 classes (?extra=1 adds extra)", downloadable=True)
FASHION_MNIST = DatasetSpec("fashion-mnist", load_fashion_mnist, "image", "quality", "Fashion-MNIST, 28x28 grayscale, 10 classes", downloadable=True)
TINY_IMAGENET = DatasetSpec("tiny-imagenet", load_tiny_imagenet, "image", "quality", "Tiny ImageNet, 64x64 RGB, 200 classes", resizable=True, streams=True)
IMAGENET32 = DatasetSpec("imagenet32", _imagenet32, "image", "quality", "downsampled ImageNet, 32x32 RGB, 1000 classes", streams=True)
IMAGENET64 = DatasetSpec("imagenet64", _imagenet64, "image", "quality", "downsampled ImageNet, 64x64 RGB, 1000 classes", streams=True)
IMAGENET = DatasetSpec("imagenet", load_imagenet, "image", "quality", "ILSVRC-2012, photographs, 1000 classes", resizable=True, streams=True)
PLACES365 = DatasetSpec("places365", load_places365, "image", "quality", "Places365-Standard, photographs, 365 classes", resizable=True, streams=True)
