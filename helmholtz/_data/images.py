"""Image data sets for the experiments: CIFAR-10, MNIST and folders of images.

Every loader returns a :class:`Dataset` of uint8 channels-last images
``(N, H, W, C)`` and int64 labels, train and test. Sources, tried in order:

CIFAR-10
    ``cifar10.npz`` (arrays ``x_train, y_train, x_test, y_test``), the official
    python-pickle folder ``cifar-10-batches-py/``, or its archive
    ``cifar-10-python.tar.gz`` (read without unpacking). With
    ``download=True`` the archive is fetched and its MD5 checked.
MNIST
    ``mnist.npz`` (same four arrays) or the four IDX files (optionally
    ``.gz``), whose MD5s are checked; ``download=True`` fetches them.
Folder
    ``ROOT/train/<class>/*`` and ``ROOT/test/<class>/*`` (or just
    ``ROOT/<class>/*``, split deterministically), any format Pillow reads.

The data folder is the ``data_dir`` argument, else the ``HELMHOLTZ_DATA``
environment variable. Nothing is downloaded unless asked for.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._extras import require
from ..errors import DataError
from .paths import resolve_data_dir
from .registry import DatasetSpec

__all__ = [
    "Dataset",
    "CIFAR10_URL",
    "CIFAR10_MD5",
    "MNIST_FILES",
    "load_cifar10",
    "load_mnist",
    "load_image_folder",
    "load_npz",
    "subset_indices",
    "download_cifar10",
    "download_mnist",
]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/")
#: IDX file -> MD5 of its uncompressed bytes (the widely published values).
MNIST_FILES: dict[str, str] = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


@dataclass
class Dataset:
    """Train and test images with labels.

    Attributes
    ----------
    x_train, x_test : ndarray
        uint8 ``(N, H, W, C)``, C = 1 or 3.
    y_train, y_test : ndarray
        int64 ``(N,)`` labels in ``0 .. len(classes) - 1``.
    name : str
        The data set's name.
    classes : tuple of str
        Class names, index = label.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str = "dataset"
    classes: tuple = ()

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3):
                raise DataError(f"{self.name}: x_{split} must be uint8 (N, H, W, 1|3); got {x.dtype} {x.shape}")
            if y.ndim != 1 or y.shape[0] != x.shape[0]:
                raise DataError(f"{self.name}: y_{split} must have one label per image ({x.shape[0]}); got shape {y.shape}")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DataError(f"{self.name}: train images {self.x_train.shape[1:]} and test images {self.x_test.shape[1:]} differ in shape")
        self.y_train = self.y_train.astype(np.int64)
        self.y_test = self.y_test.astype(np.int64)
        if not self.classes:
            self.classes = tuple(str(i) for i in range(int(max(self.y_train.max(initial=0), self.y_test.max(initial=0))) + 1))
        for split, y in (("train", self.y_train), ("test", self.y_test)):
            if y.size and (y.min() < 0 or y.max() >= len(self.classes)):
                raise DataError(f"{self.name}: y_{split} has labels outside 0..{len(self.classes) - 1}")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)``."""
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    def subset(self, train: int | None = None, test: int | None = None, seed: int = 0) -> "Dataset":
        """A smaller data set: ``train`` / ``test`` images picked by :func:`subset_indices`."""
        tr = subset_indices(len(self.y_train), train, seed, "train_subset")
        te = subset_indices(len(self.y_test), test, seed, "test_subset")
        return Dataset(self.x_train[tr], self.y_train[tr], self.x_test[te], self.y_test[te], self.name, self.classes)


def subset_indices(n: int, size: int | None, seed: int = 0, name: str = "subset") -> np.ndarray:
    """Indices of a fixed random subset of ``size`` out of ``n`` (all of them for ``None``).

    The same ``(n, size, seed)`` always gives the same images, so every trial
    of a sweep sees the same subset whatever its own seed.
    """
    if size is None:
        return np.arange(n)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"{name} must be an int or None; got {type(size).__name__}")
    if size < 1:
        raise ValueError(f"{name} must be >= 1; got {size}")
    if size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:size])


def _md5(path: Path | None = None, data: bytes | None = None) -> str:
    h = hashlib.md5()
    if data is not None:
        h.update(data)
    else:
        assert path is not None
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def load_npz(path: str | os.PathLike, name: str = "dataset", classes: tuple = (), image_shape: tuple | None = None) -> Dataset:
    """Load an ``.npz`` holding ``x_train, y_train, x_test, y_test``.

    Grayscale ``(N, H, W)`` arrays get a channel axis. ``image_shape``, when
    given, is the ``(H, W, C)`` every image must have.

    Raises
    ------
    DataError
        If the file is unreadable, lacks an array, or has the wrong shapes.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{name}: {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in z.files]
            if missing:
                raise DataError(f"{name}: {str(path)!r} lacks array(s) {', '.join(missing)}")
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except DataError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError, EOFError ...
        raise DataError(f"{name}: {str(path)!r} is not a readable .npz file ({type(exc).__name__}: {exc})") from exc
    for split in ("train", "test"):
        x = arrays[f"x_{split}"]
        if x.ndim == 3:
            arrays[f"x_{split}"] = x[..., None]
        if image_shape is not None and tuple(arrays[f"x_{split}"].shape[1:]) != tuple(image_shape):
            raise DataError(f"{name}: x_{split} in {str(path)!r} has images of shape {x.shape[1:]}; expected {tuple(image_shape)}")
    return Dataset(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], name, classes)


def _cifar_batches(read: Callable[[str], bytes]) -> Dataset:
    def batch(member: str):
        try:
            d = pickle.loads(read(member), encoding="bytes")
            x = np.asarray(d[b"data"], dtype=np.uint8)
            y = np.asarray(d[b"labels"], dtype=np.int64)
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"cifar10: {member} is corrupt ({type(exc).__name__}: {exc})") from exc
        if x.ndim != 2 or x.shape[1] != 3072 or x.shape[0] != y.shape[0]:
            raise DataError(f"cifar10: {member} has data of shape {x.shape}; expected (N, 3072)")
        return x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), y

    train = [batch(f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = batch("test_batch")
    x_train = np.ascontiguousarray(np.concatenate([b[0] for b in train]))
    y_train = np.concatenate([b[1] for b in train])
    return Dataset(x_train, y_train, np.ascontiguousarray(x_test), y_test, "cifar10", CIFAR10_CLASSES)


def download_cifar10(data_dir: str | os.PathLike) -> Path:
    """Download ``cifar-10-python.tar.gz`` into ``data_dir`` and check its MD5.

    Returns the archive's path. Never called by the tests.
    """
    target = Path(data_dir) / "cifar-10-python.tar.gz"
    _download([CIFAR10_URL], target, CIFAR10_MD5)
    return target


def _download(urls, target: Path, md5: str | None, check_uncompressed: str | None = None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    last: Exception | None = None
    for url in urls:
        tmp = target.with_suffix(target.suffix + ".part")
        try:
            with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:  # noqa: S310 - fixed https URLs
                while chunk := r.read(1 << 20):
                    f.write(chunk)
        except OSError as exc:
            last = exc
            tmp.unlink(missing_ok=True)
            continue
        got = _md5(tmp) if md5 is not None else None
        if md5 is not None and got != md5:
            tmp.unlink(missing_ok=True)
            raise DataError(f"download of {url} has MD5 {got}; expected {md5}")
        if check_uncompressed is not None:
            got = _md5(data=gzip.decompress(tmp.read_bytes()))
            if got != check_uncompressed:
                tmp.unlink(missing_ok=True)
                raise DataError(f"download of {url} decompresses to MD5 {got}; expected {check_uncompressed}")
        tmp.replace(target)
        return
    raise DataError(f"could not download {target.name} ({last}); place it in {target.parent} by hand")


def load_cifar10(data_dir: str | os.PathLike | None = None, *, download: bool = False, verify: bool = True) -> Dataset:
    """Load CIFAR-10 (50,000 train and 10,000 test 32x32 RGB images).

    Parameters
    ----------
    data_dir : path, optional
        Folder with ``cifar10.npz``, ``cifar-10-batches-py/`` or
        ``cifar-10-python.tar.gz``; default ``$HELMHOLTZ_DATA``.
    download : bool
        Fetch the official archive when none of those exists.
    verify : bool
        Check the archive's MD5 before reading it.

    Raises
    ------
    DataError
        Missing files, a checksum or shape mismatch.
    """
    root = resolve_data_dir(data_dir) if not (download and data_dir is not None) else Path(data_dir)
    npz = root / "cifar10.npz"
    if npz.is_file():
        return load_npz(npz, "cifar10", CIFAR10_CLASSES, image_shape=(32, 32, 3))
    folder = root / "cifar-10-batches-py"
    if folder.is_dir():

        def read(member: str) -> bytes:
            p = folder / member
            if not p.is_file():
                raise DataError(f"cifar10: {str(p)!r} is missing")
            return p.read_bytes()

        return _cifar_batches(read)
    archive = root / "cifar-10-python.tar.gz"
    if not archive.is_file() and download:
        download_cifar10(root)
    if archive.is_file():
        if verify and _md5(archive) != CIFAR10_MD5:
            raise DataError(f"cifar10: {str(archive)!r} has the wrong MD5 (expected {CIFAR10_MD5}); delete it and download again")
        try:
            with tarfile.open(archive, "r:gz") as tar:

                def read(member: str) -> bytes:
                    f = tar.extractfile(f"cifar-10-batches-py/{member}")
                    if f is None:
                        raise DataError(f"cifar10: {member} missing from {archive}")
                    return f.read()

                return _cifar_batches(read)
        except (tarfile.TarError, KeyError, OSError, EOFError) as exc:
            raise DataError(f"cifar10: {str(archive)!r} is corrupt ({exc})") from exc
    raise DataError(
        f"cifar10: none of cifar10.npz, cifar-10-batches-py/ or cifar-10-python.tar.gz in {str(root)!r}; "
        f"download {CIFAR10_URL} there (or pass download=True)"
    )


def _read_idx(data: bytes, name: str) -> np.ndarray:
    if len(data) < 8 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"mnist: {name} is not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"mnist: {name} holds {body.size} bytes; its header says {dims}")
    return body.reshape(dims)


def download_mnist(data_dir: str | os.PathLike) -> None:
    """Download the four MNIST IDX ``.gz`` files into ``data_dir``, checking MD5s."""
    for stem, md5 in MNIST_FILES.items():
        target = Path(data_dir) / f"{stem}.gz"
        if not target.is_file():
            _download([m + stem + ".gz" for m in MNIST_MIRRORS], target, None, check_uncompressed=md5)


def load_mnist(data_dir: str | os.PathLike | None = None, *, download: bool = False, verify: bool = True) -> Dataset:
    """Load MNIST (60,000 train and 10,000 test 28x28 grayscale images, C = 1).

    Reads ``mnist.npz`` or the four IDX files (plain or ``.gz``) from
    ``data_dir`` (default ``$HELMHOLTZ_DATA``), checking the IDX MD5s when
    ``verify``; ``download=True`` fetches missing IDX files.

    Raises
    ------
    DataError
        Missing files, a checksum or shape mismatch.
    """
    root = resolve_data_dir(data_dir) if not (download and data_dir is not None) else Path(data_dir)
    npz = root / "mnist.npz"
    if npz.is_file():
        return load_npz(npz, "mnist", tuple(str(i) for i in range(10)), image_shape=(28, 28, 1))
    if download:
        download_mnist(root)
    arrays = {}
    for stem, md5 in MNIST_FILES.items():
        for candidate in (root / stem, root / f"{stem}.gz"):
            if candidate.is_file():
                raw = candidate.read_bytes()
                if candidate.suffix == ".gz":
                    try:
                        raw = gzip.decompress(raw)
                    except (OSError, EOFError) as exc:
                        raise DataError(f"mnist: {str(candidate)!r} is corrupt ({exc})") from exc
                if verify and _md5(data=raw) != md5:
                    raise DataError(f"mnist: {str(candidate)!r} has the wrong MD5 (expected {md5} uncompressed)")
                arrays[stem] = _read_idx(raw, candidate.name)
                break
        else:
            raise DataError(f"mnist: neither mnist.npz nor {stem}[.gz] in {str(root)!r} (pass download=True to fetch)")
    return Dataset(
        np.ascontiguousarray(arrays["train-images-idx3-ubyte"][..., None]),
        arrays["train-labels-idx1-ubyte"],
        np.ascontiguousarray(arrays["t10k-images-idx3-ubyte"][..., None]),
        arrays["t10k-labels-idx1-ubyte"],
        "mnist",
        tuple(str(i) for i in range(10)),
    )


def _read_class_folders(root: Path, classes: list[str] | None = None) -> tuple[list[np.ndarray], list[int], list[str]]:
    Image = require("PIL.Image", purpose="reading image folders")

    if classes is None:
        classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    images, labels = [], []
    for label, cls in enumerate(classes):
        folder = root / cls
        if not folder.is_dir():
            continue
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() not in _IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(f) as im:
                    mode = "L" if im.mode in ("1", "L", "I;16", "I", "F") else "RGB"
                    images.append(np.asarray(im.convert(mode)))
            except OSError as exc:
                raise DataError(f"folder: {str(f)!r} is not a readable image ({exc})") from exc
            labels.append(label)
    return images, labels, classes


def _stack(images: list[np.ndarray], where: Path) -> np.ndarray:
    if not images:
        raise DataError(f"folder: no images found in {str(where)!r}")
    if any(im.ndim == 2 for im in images) and any(im.ndim == 3 for im in images):
        images = [np.repeat(im[..., None], 3, axis=2) if im.ndim == 2 else im for im in images]
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise DataError(f"folder: images in {str(where)!r} have different shapes {sorted(shapes)[:4]}; resize them to one size")
    x = np.stack(images)
    return x[..., None] if x.ndim == 3 else x


def load_image_folder(root: str | os.PathLike | None = None, *, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Load a folder of images with one subfolder per class.

    ``ROOT/train/<class>/*`` and ``ROOT/test/<class>/*`` give the split; a
    plain ``ROOT/<class>/*`` is split with ``test_fraction`` of each class
    going to the test set (deterministic for ``seed``). All images must have
    one size; grayscale and colour are not mixed (grayscale is widened).
    """
    path = resolve_data_dir(root)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1); got {test_fraction}")
    if (path / "train").is_dir() and (path / "test").is_dir():
        x_tr, y_tr, classes = _read_class_folders(path / "train")
        x_te, y_te, _ = _read_class_folders(path / "test", classes)
        x_train, x_test = _stack(x_tr, path / "train"), _stack(x_te, path / "test")
        return Dataset(x_train, np.asarray(y_tr), x_test, np.asarray(y_te), path.name, tuple(classes))
    images, labels, classes = _read_class_folders(path)
    x, y = _stack(images, path), np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    test_mask = np.zeros(len(y), bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k = max(1, int(round(test_fraction * len(idx)))) if len(idx) > 1 else 0
        test_mask[rng.permutation(idx)[:k]] = True
    return Dataset(x[~test_mask], y[~test_mask], x[test_mask], y[test_mask], path.name, tuple(classes))


def _load_folder(data_dir: Any = None, **kwargs: Any) -> Dataset:
    return load_image_folder(data_dir, **kwargs)


# The specs helmholtz declares as entry points (group "helmholtz.datasets").
CIFAR10 = DatasetSpec("cifar10", load_cifar10, "image", "quality", "CIFAR-10, 32x32 RGB, 10 classes", downloadable=True)
MNIST = DatasetSpec("mnist", load_mnist, "image", "quality", "MNIST, 28x28 grayscale, 10 classes", downloadable=True)
FOLDER = DatasetSpec("folder", _load_folder, "image", "quality", "a folder of images, one subfolder per class (--data-dir)")
