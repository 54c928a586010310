"""Image data sets for the experiments: CIFAR-10, MNIST and folders of images.

Every loader returns a :class:`Dataset` of uint8 channels-last images and
int64 labels, train and test, validated once when it is built. Sources,
tried in order:

CIFAR-10
    ``cifar10.npz`` (arrays ``x_train, y_train, x_test, y_test``), the official
    python-pickle folder ``cifar-10-batches-py/``, or its archive
    ``cifar-10-python.tar.gz`` (read without unpacking). With
    ``download=True`` the archive is fetched and its MD5 checked. The
    pickles are read by a restricted unpickler that resolves only NumPy's
    array reconstruction (:func:`helmholtz._data.safety.load_cifar_pickle`),
    so a crafted batch cannot run code.
MNIST
    ``mnist.npz`` (same four arrays) or the four IDX files (optionally
    ``.gz``), whose MD5s are checked; ``download=True`` fetches them.
Folder
    ``ROOT/train/<class>/*`` and ``ROOT/test/<class>/*`` (or just
    ``ROOT/<class>/*``, split deterministically), any format Pillow reads;
    images of mixed sizes are kept as lists, or brought to one size with
    ``size=(H, W)``.

Rules every loader keeps (a violation is a :class:`~helmholtz.errors.DataError`
naming the file and what was expected):

* labels are integers in ``0 .. len(classes) - 1``; float labels are refused,
  never truncated;
* a truncated or corrupt file (zip, gzip, tar, pickle, image) is reported,
  never passed on as a raw ``BadZipFile``/``EOFError``/``zlib.error``;
* nothing expands beyond ``HELMHOLTZ_MAX_BYTES`` (default 4 GiB per file) or
  ``HELMHOLTZ_MAX_IMAGE_PIXELS`` (default Pillow's limit per image): see
  :mod:`helmholtz._data.safety`.

The data folder is the ``data_dir`` argument, else the ``HELMHOLTZ_DATA``
environment variable. Nothing is downloaded unless asked for.
"""

from __future__ import annotations

import hashlib
import os
import struct
import urllib.request
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._extras import require
from ..errors import DataError
from .checks import check_subset_size, integer_labels
from .paths import resolve_data_dir
from .registry import DatasetSpec
from .safety import MAX_IMAGE_PIXELS_ENV, check_expanded_size, gunzip, load_cifar_pickle, max_image_pixels, read_npz, read_tar_members

__all__ = [
    "Dataset",
    "CIFAR10_URL",
    "CIFAR10_MD5",
    "MNIST_FILES",
    "IMAGE_SUFFIXES",
    "FITS",
    "load_cifar10",
    "load_mnist",
    "load_image_folder",
    "load_npz",
    "read_image",
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

#: File endings :func:`load_image_folder` reads (case-insensitive); other files are skipped.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
#: How ``size=(H, W)`` brings an image to one size: ``"resize"`` (bicubic, aspect not kept) or ``"crop"`` (centre crop).
FITS = ("resize", "crop")

_HOW_TO_ONE_SIZE = "load the folder with size=(H, W) (load_image_folder(root, size=(32, 32)), fit='resize' or 'crop')"


def _check_images(x: Any, where: str) -> None:
    if isinstance(x, np.ndarray):
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3):
            raise DataError(f"{where} must be uint8 (N, H, W, 1|3); got {x.dtype} {x.shape}")
        return
    if not isinstance(x, list):
        raise DataError(f"{where} must be a uint8 array (N, H, W, C) or a list of uint8 (H, W, C) arrays; got {type(x).__name__}")
    for i, im in enumerate(x):
        if not isinstance(im, np.ndarray) or im.dtype != np.uint8 or im.ndim != 3 or im.shape[-1] not in (1, 3) or 0 in im.shape:
            got = f"{im.dtype} {im.shape}" if isinstance(im, np.ndarray) else type(im).__name__
            raise DataError(f"{where}[{i}] must be a uint8 (H, W, 1|3) array; got {got}")


def _shapes(x: np.ndarray | list) -> set[tuple[int, ...]]:
    return {tuple(x.shape[1:])} if isinstance(x, np.ndarray) else {tuple(im.shape) for im in x}


@dataclass
class Dataset:
    """Train and test images with labels, validated when built.

    A data set is *uniform* when every image has one shape ``(H, W, C)``:
    then ``x_train`` and ``x_test`` are uint8 arrays ``(N, H, W, C)``, as
    every loader of a fixed-size data set gives. A folder of photographs of
    mixed sizes is *ragged*: ``x_train`` and ``x_test`` are lists of uint8
    ``(H_i, W_i, C)`` arrays (one C for all). Lists whose images all share
    one shape are stacked, so a uniform data set is always held as arrays;
    two arrays of different shapes are refused (pass lists to mean "mixed
    sizes"). Training needs one size: call :meth:`require_uniform_size`.

    Attributes
    ----------
    x_train, x_test : ndarray or list of ndarray
        uint8 ``(N, H, W, C)``, C = 1 or 3, or (ragged) a list of ``(H, W, C)``.
    y_train, y_test : ndarray
        int64 ``(N,)`` labels in ``0 .. len(classes) - 1``. Given labels
        must have an integer dtype: float labels are refused, not truncated.
    name : str
        The data set's name.
    classes : tuple of str
        Class names, index = label (default ``"0"`` .. the largest label).
    source : str
        The file or folder the data came from, named in error messages.

    Raises
    ------
    DataError
        Images not uint8 with 1 or 3 channels, channels that differ between
        images, labels that are not integers, not one per image, negative or
        outside the classes; the message names the data set and its source.
    """

    x_train: np.ndarray | list
    y_train: np.ndarray
    x_test: np.ndarray | list
    y_test: np.ndarray
    name: str = "dataset"
    classes: tuple = ()
    source: str = ""

    def _where(self, what: str) -> str:
        return f"{self.name} ({self.source}): {what}" if self.source else f"{self.name}: {what}"

    def __post_init__(self) -> None:
        if isinstance(self.x_train, tuple):
            self.x_train = list(self.x_train)
        if isinstance(self.x_test, tuple):
            self.x_test = list(self.x_test)
        for split in ("train", "test"):
            _check_images(getattr(self, f"x_{split}"), self._where(f"x_{split}"))
        arrays = isinstance(self.x_train, np.ndarray) and isinstance(self.x_test, np.ndarray)
        if arrays and self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DataError(
                self._where(f"train images {self.x_train.shape[1:]} and test images {self.x_test.shape[1:]} differ in shape; "
                            "pass lists of (H, W, C) arrays for a data set of mixed sizes")
            )
        shapes = _shapes(self.x_train) | _shapes(self.x_test)
        if not shapes:
            raise DataError(self._where("holds no images, so the image shape is unknown"))
        channels = {s[-1] for s in shapes}
        if len(channels) > 1:
            raise DataError(self._where(f"images mix {sorted(channels)} channels; expected one channel count"))
        if len(shapes) == 1:  # one size: hold it as arrays
            (shape,) = shapes
            for split in ("train", "test"):
                x = getattr(self, f"x_{split}")
                if isinstance(x, list):
                    setattr(self, f"x_{split}", np.stack(x) if x else np.empty((0, *shape), np.uint8))
        else:
            for split in ("train", "test"):
                x = getattr(self, f"x_{split}")
                if isinstance(x, np.ndarray):
                    setattr(self, f"x_{split}", list(x))
        if not isinstance(self.classes, tuple):
            self.classes = tuple(self.classes)
        known = len(self.classes) if self.classes else None
        self.y_train = integer_labels(self.y_train, len(self.x_train), self._where("y_train"), known)
        self.y_test = integer_labels(self.y_test, len(self.x_test), self._where("y_test"), known)
        if not self.classes:
            self.classes = tuple(str(i) for i in range(int(max(self.y_train.max(initial=0), self.y_test.max(initial=0))) + 1))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def is_uniform(self) -> bool:
        """Whether every image has one shape (then ``x_train``/``x_test`` are arrays)."""
        return isinstance(self.x_train, np.ndarray)

    @property
    def image_shapes(self) -> tuple[tuple[int, int, int], ...]:
        """The distinct ``(H, W, C)`` of the images, sorted (one entry when uniform)."""
        return tuple(sorted(_shapes(self.x_train) | _shapes(self.x_test)))  # type: ignore[arg-type]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)``.

        Raises
        ------
        DataError
            For a ragged data set (see :meth:`require_uniform_size`).
        """
        return self.require_uniform_size()

    def require_uniform_size(self, how: str = _HOW_TO_ONE_SIZE) -> tuple[int, int, int]:
        """The one ``(H, W, C)`` of every image; what a sweep calls before training.

        Parameters
        ----------
        how : str, optional
            How the caller gets one size, put in the message (a command line
            names its own flag); by default the ``size=`` option of
            :func:`load_image_folder`.

        Raises
        ------
        DataError
            If the images have more than one size; the message lists some
            of the sizes and says how to get one.
        """
        if self.is_uniform:
            return tuple(self.x_train.shape[1:])  # type: ignore[union-attr,return-value]
        shapes = self.image_shapes
        listed = ", ".join(f"{h}x{w}" for h, w, _ in shapes[:4]) + (", ..." if len(shapes) > 4 else "")
        raise DataError(self._where(f"images have {len(shapes)} different sizes ({listed}); training needs one size: {how}"))

    def subset(self, train: int | None = None, test: int | None = None, seed: int = 0) -> "Dataset":
        """A smaller data set: ``train`` / ``test`` images picked by :func:`subset_indices`.

        Raises
        ------
        TypeError, ValueError
            As :func:`subset_indices`: in particular a subset larger than
            its split is an error, not "all of it".
        """
        tr = subset_indices(len(self.y_train), train, seed, "train_subset", "train")
        te = subset_indices(len(self.y_test), test, seed, "test_subset", "test")
        pick = (lambda x, idx: x[idx]) if self.is_uniform else (lambda x, idx: [x[i] for i in idx])
        return Dataset(pick(self.x_train, tr), self.y_train[tr], pick(self.x_test, te), self.y_test[te], self.name, self.classes, self.source)


def subset_indices(n: int, size: int | None, seed: int = 0, name: str = "subset", split: str = "data") -> np.ndarray:
    """Indices of a fixed random subset of ``size`` out of ``n`` (all of them for ``None``).

    The same ``(n, size, seed)`` always gives the same images, so every trial
    of a sweep sees the same subset whatever its own seed.

    Raises
    ------
    TypeError
        If ``size`` is not an int or None.
    ValueError
        If ``size`` < 1, or ``size`` > ``n``: a subset larger than its split
        is an error (the message names ``name`` and the split's size).
    """
    size = check_subset_size(size, n, name, split)
    if size is None:
        return np.arange(n)
    if size == n:
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
    given, is the ``(H, W, C)`` every image must have. Images must be uint8
    and labels integers (see :class:`Dataset`); the arrays' declared sizes
    are checked against ``HELMHOLTZ_MAX_BYTES`` before they are read.

    Raises
    ------
    DataError
        Naming the file: it is missing, not a zip, truncated or corrupt,
        lacks an array, would expand beyond the limit, or holds arrays of
        the wrong shape, dtype or labels.
    """
    path = Path(path)
    arrays = read_npz(path, ("x_train", "y_train", "x_test", "y_test"), what=name)
    for split in ("train", "test"):
        x = arrays[f"x_{split}"]
        if x.ndim == 3:
            arrays[f"x_{split}"] = x[..., None]
        if image_shape is not None and tuple(arrays[f"x_{split}"].shape[1:]) != tuple(image_shape):
            raise DataError(f"{name}: x_{split} in {str(path)!r} has images of shape {x.shape[1:]}; expected {tuple(image_shape)}")
    return Dataset(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], name, classes, str(path))


_CIFAR_MEMBERS = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


def _cifar_batches(read: Callable[[str], bytes], source: str) -> Dataset:
    def batch(member: str):
        where = f"{member} in {source}"
        raw = read(member)
        d = load_cifar_pickle(raw, where)
        if not isinstance(d, dict) or b"data" not in d or b"labels" not in d:
            raise DataError(f"cifar10: {where} is not a CIFAR batch; expected a dict with b'data' and b'labels'")
        x = d[b"data"]
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072:
            got = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
            raise DataError(f"cifar10: {where} has data {got}; expected uint8 (N, 3072)")
        if x.nbytes > len(raw):  # real pixels are in the pickle; more means an uninitialised allocation
            raise DataError(f"cifar10: {where} declares {x.nbytes:,} bytes of pixels in a pickle of {len(raw):,} bytes; it is crafted or corrupt")
        y = integer_labels(np.asarray(d[b"labels"]), x.shape[0], f"cifar10: {where}: labels", len(CIFAR10_CLASSES))
        return x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), y

    train = [batch(m) for m in _CIFAR_MEMBERS[:5]]
    x_test, y_test = batch("test_batch")
    x_train = np.ascontiguousarray(np.concatenate([b[0] for b in train]))
    y_train = np.concatenate([b[1] for b in train])
    return Dataset(x_train, y_train, np.ascontiguousarray(x_test), y_test, "cifar10", CIFAR10_CLASSES, source)


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
            try:
                got = _md5(data=gunzip(tmp, "download"))
            except DataError:
                tmp.unlink(missing_ok=True)
                raise
            if got != check_uncompressed:
                tmp.unlink(missing_ok=True)
                raise DataError(f"download of {url} decompresses to MD5 {got}; expected {check_uncompressed}")
        tmp.replace(target)
        return
    raise DataError(f"could not download {target.name} ({last}); place it in {target.parent} by hand")


def _read_file(path: Path, what: str) -> bytes:
    check_expanded_size(path.stat().st_size, path, "the file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"{what}: {str(path)!r} cannot be read ({exc})") from exc


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

    Notes
    -----
    The batch pickles are read by a restricted unpickler that resolves only
    NumPy's array reconstruction (``numpy.ndarray``, ``numpy.dtype``,
    ``_reconstruct``, ``_frombuffer``) and latin-1 ``_codecs.encode``: a
    pickle naming anything else is refused before any of it runs. Tar
    members are read only when they are regular files within
    ``HELMHOLTZ_MAX_BYTES``.

    Raises
    ------
    DataError
        Missing files; a checksum, shape, dtype or label mismatch; a
        truncated or corrupt ``.npz``, archive or pickle; a refused pickle;
        each naming the file.
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
                raise DataError(f"cifar10: {str(p)!r} is missing; expected the batches {', '.join(_CIFAR_MEMBERS)}")
            return _read_file(p, "cifar10")

        return _cifar_batches(read, str(folder))
    archive = root / "cifar-10-python.tar.gz"
    if not archive.is_file() and download:
        download_cifar10(root)
    if archive.is_file():
        if verify and _md5(archive) != CIFAR10_MD5:
            raise DataError(f"cifar10: {str(archive)!r} has the wrong MD5 (expected {CIFAR10_MD5}); delete it and download again")
        members = read_tar_members(archive, [f"cifar-10-batches-py/{m}" for m in _CIFAR_MEMBERS], "cifar10")
        return _cifar_batches(lambda m: members[f"cifar-10-batches-py/{m}"], str(archive))
    raise DataError(
        f"cifar10: none of cifar10.npz, cifar-10-batches-py/ or cifar-10-python.tar.gz in {str(root)!r}; "
        f"download {CIFAR10_URL} there (or pass download=True to fetch it)"
    )


def _read_idx(data: bytes, name: str, ndim: int) -> np.ndarray:
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"mnist: {name} is not an unsigned-byte IDX file")
    if data[3] != ndim:
        raise DataError(f"mnist: {name} holds a {data[3]}-D array; expected {ndim}-D")
    if len(data) < 4 + 4 * ndim:
        raise DataError(f"mnist: {name} is truncated inside its header")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims, dtype=object)):
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
    ``verify``; ``download=True`` fetches missing IDX files. A ``.gz`` is
    decompressed in chunks and refused once it passes ``HELMHOLTZ_MAX_BYTES``.

    Raises
    ------
    DataError
        Missing files; a checksum, shape or label mismatch; a truncated or
        corrupt file or a gzip bomb; each naming the file.
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
                raw = gunzip(candidate, "mnist") if candidate.suffix == ".gz" else _read_file(candidate, "mnist")
                if verify and _md5(data=raw) != md5:
                    raise DataError(f"mnist: {str(candidate)!r} has the wrong MD5 (expected {md5} uncompressed)")
                images = "images" in stem
                arr = _read_idx(raw, str(candidate), 3 if images else 1)
                if images and arr.shape[1:] != (28, 28):
                    raise DataError(f"mnist: {str(candidate)!r} holds images of shape {arr.shape[1:]}; expected (28, 28)")
                arrays[stem] = arr
                break
        else:
            raise DataError(f"mnist: neither mnist.npz nor {stem}[.gz] in {str(root)!r} (pass download=True to fetch)")
    for split, prefix in (("train", "train"), ("test", "t10k")):
        n = arrays[f"{prefix}-images-idx3-ubyte"].shape[0]
        integer_labels(arrays[f"{prefix}-labels-idx1-ubyte"], n, f"mnist: {prefix}-labels-idx1-ubyte in {str(root)!r}", 10)
    return Dataset(
        np.ascontiguousarray(arrays["train-images-idx3-ubyte"][..., None]),
        arrays["train-labels-idx1-ubyte"],
        np.ascontiguousarray(arrays["t10k-images-idx3-ubyte"][..., None]),
        arrays["t10k-labels-idx1-ubyte"],
        "mnist",
        tuple(str(i) for i in range(10)),
        str(root),
    )


# ---------------------------------------------------------------- folders of images
_GRAY_MODES = ("1", "L", "LA", "La")
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
# Pillow's errors for unreadable images: UnidentifiedImageError and "truncated" are OSErrors, a
# broken PNG chunk is a SyntaxError; the rest come from damaged headers and unsupported features.
_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, TypeError, IndexError, KeyError, struct.error, zlib.error, NotImplementedError)


def _rawmode(im: Any) -> str:
    if not im.tile:
        return ""
    args = im.tile[0].args if hasattr(im.tile[0], "args") else im.tile[0][3]
    return args if isinstance(args, str) else str(args[0]) if args else ""


def _to_uint8(im: Any, path: Path) -> np.ndarray:
    """The image as uint8 ``(H, W)`` (grayscale) or ``(H, W, 3)`` by the documented rules."""
    mode = im.mode
    if mode in _SIXTEEN_BIT_MODES or (mode == "I" and _rawmode(im).startswith("I;16")):
        return (np.asarray(im).astype(np.uint16) >> 8).astype(np.uint8)
    if mode in ("I", "F") or mode.startswith(("I;", "F;")):
        raise DataError(
            f"folder: {str(path)!r} is a {mode} image (32-bit integer or float samples); "
            "expected 8- or 16-bit samples: convert it to an 8- or 16-bit image first"
        )
    return np.asarray(im.convert("L" if mode in _GRAY_MODES else "RGB"))


def _fit(arr: np.ndarray, size: tuple[int, int], fit: str, path: Path) -> np.ndarray:
    h, w = size
    if arr.shape[:2] == (h, w):
        return arr
    if fit == "crop":
        if arr.shape[0] < h or arr.shape[1] < w:
            raise DataError(
                f"folder: {str(path)!r} is {arr.shape[0]}x{arr.shape[1]}, smaller than size={size} in one dimension, "
                "so it cannot be centre-cropped; use fit='resize'"
            )
        top, left = (arr.shape[0] - h) // 2, (arr.shape[1] - w) // 2
        return np.ascontiguousarray(arr[top : top + h, left : left + w])
    Image = require("PIL.Image", purpose="resizing images")
    return np.asarray(Image.fromarray(arr).resize((w, h), Image.Resampling.BICUBIC))


def read_image(path: str | os.PathLike, size: tuple[int, int] | None = None, fit: str = "resize") -> np.ndarray:
    """One image file as uint8: ``(H, W)`` for grayscale, ``(H, W, 3)`` for colour.

    Pixels are converted by fixed rules (see Notes): 16-bit samples keep
    their high byte, 32-bit and float images are refused, and images over
    the pixel limit are refused before they are decoded.

    Parameters
    ----------
    path : path
    size : (int, int), optional
        ``(H, W)`` to bring the image to; default its own size.
    fit : {"resize", "crop"}
        With ``size``: ``"resize"`` resamples to exactly ``(H, W)`` (Pillow
        bicubic; the aspect ratio is not kept); ``"crop"`` cuts the centre
        ``(H, W)`` (top/left offset ``(h - H) // 2``, ``(w - W) // 2``) and
        refuses an image smaller than that. Both are deterministic.

    Returns
    -------
    ndarray
        uint8 ``(H, W)`` or ``(H, W, 3)``.

    Raises
    ------
    DataError
        Naming the file: unreadable, corrupt or truncated, a refused mode, a
        decompression bomb, or too small to crop.

    Notes
    -----
    * 8-bit grayscale (modes ``1``, ``L``, ``LA``) stays grayscale; every other
      8-bit mode (palette, RGB, RGBA, CMYK, ...) becomes RGB through Pillow's
      ``convert("RGB")``; an alpha channel is dropped, not composited.
    * 16-bit samples keep their high byte, ``v >> 8`` (0x12FF becomes 0x12):
      16-bit grayscale (Pillow modes ``I;16*``, and mode ``I`` when the
      file's samples are 16-bit, as older Pillows open such PNGs) here, and 16-bit RGB/RGBA,
      which Pillow's PNG decoder already reads by the same rule. Nothing is
      clipped.
    * 32-bit integer and float images (modes ``I``, ``F``) are refused: no
      rule maps them to 8 bits without guessing their range.
    * An image over ``HELMHOLTZ_MAX_IMAGE_PIXELS`` pixels (default Pillow's
      ``MAX_IMAGE_PIXELS``) is refused before it is decoded, and so is one
      that Pillow's own decompression-bomb guard refuses.
    """
    size = _check_size_option(size, fit)
    Image = require("PIL.Image", purpose="reading image folders")
    path = Path(path)
    limit = max_image_pixels()
    try:
        with warnings.catch_warnings():
            # our own limit was checked first; Pillow's warning between 1x and 2x its limit adds nothing
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                if width * height > limit:
                    raise DataError(
                        f"folder: {str(path)!r} is {width}x{height} = {width * height:,} pixels, over the limit of {limit:,} "
                        f"(a decompression bomb, or set {MAX_IMAGE_PIXELS_ENV} higher if the image is genuine)"
                    )
                arr = _to_uint8(im, path)
    except DataError:
        raise
    except Image.DecompressionBombError as exc:
        raise DataError(
            f"folder: {str(path)!r} was refused by Pillow's decompression-bomb guard ({exc}); "
            f"if it is genuine raise PIL.Image.MAX_IMAGE_PIXELS and {MAX_IMAGE_PIXELS_ENV}"
        ) from exc
    except _IMAGE_ERRORS as exc:
        raise DataError(f"folder: {str(path)!r} is not a readable image, or it is truncated ({type(exc).__name__}: {exc})") from exc
    return _fit(arr, size, fit, path) if size is not None else arr


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def _class_folders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and _visible(p))


def _image_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and _visible(f) and f.suffix.lower() in IMAGE_SUFFIXES)


def _read_split(root: Path, classes: list[str], size, fit) -> tuple[list[np.ndarray], list[int]]:
    images, labels = [], []
    for label, cls in enumerate(classes):
        folder = root / cls
        if not folder.is_dir():
            continue
        for f in _image_files(folder):
            images.append(read_image(f, size, fit))
            labels.append(label)
    return images, labels


def _as_channels_last(images: list[np.ndarray]) -> list[np.ndarray]:
    """Grayscale images get a channel axis; when colour is present they are widened to RGB."""
    colour = any(im.ndim == 3 for im in images)
    if colour:
        return [np.repeat(im[..., None], 3, axis=2) if im.ndim == 2 else im for im in images]
    return [im[..., None] for im in images]


def _check_size_option(size: Any, fit: Any) -> tuple[int, int] | None:
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}; got {fit!r}")
    if size is None:
        return None
    if (
        not isinstance(size, (tuple, list))
        or len(size) != 2
        or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) for s in size)
    ):
        raise TypeError(f"size must be a pair of ints (H, W) or None; got {size!r}")
    if min(size) < 1:
        raise ValueError(f"size must be positive (H, W); got {tuple(size)}")
    return int(size[0]), int(size[1])


def load_image_folder(
    root: str | os.PathLike | None = None,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    size: tuple[int, int] | None = None,
    fit: str = "resize",
) -> Dataset:
    """Load a folder of images with one subfolder per class.

    ``ROOT/train/<class>/*`` and ``ROOT/test/<class>/*`` give the split; a
    plain ``ROOT/<class>/*`` is split per class. Images of mixed sizes give a
    ragged data set unless ``size=(H, W)`` brings them to one size. The
    rules each layout keeps are in the Notes.

    Parameters
    ----------
    root : path, optional
        The folder; default ``$HELMHOLTZ_DATA``.
    test_fraction : float
        In (0, 1); used only for the plain layout.
    seed : int
        Seeds the plain layout's split.
    size : (int, int), optional
        ``(H, W)`` every image is brought to as it is read (see :func:`read_image`).
    fit : {"resize", "crop"}
        How ``size`` is reached: bicubic resize, or centre crop.

    Returns
    -------
    Dataset
        Uniform (arrays) when every image has one shape, ragged (lists) otherwise.

    Raises
    ------
    TypeError, ValueError
        Naming the argument: ``test_fraction``, ``seed``, ``size``, ``fit``.
    DataError
        Naming the folder or file: no class folders, a class without
        images or without training images, a class only under ``test/``,
        an empty test set, ``train/`` without ``test/``, an unreadable
        image (see :func:`read_image`).

    Notes
    -----
    With ``train/`` and ``test/``, the classes are the subfolders of
    ``train/``; a class found only under ``test/`` is an error (it has no
    training images), as is an empty test set. A class may be missing from
    ``test/``. ``train/`` without ``test/`` (or the reverse) is an error.

    The plain layout puts ``round(test_fraction * n)`` of a class's ``n``
    images in the test set, at least 1 and at most ``n - 1`` (a class of one
    image stays in training), chosen by a permutation seeded with ``seed``.
    A split that leaves the test set empty (every class has one image) is an
    error.

    Every class folder must hold at least one image. Files are read in name
    order; hidden files and folders (``.*``) and files whose ending is not
    in :data:`IMAGE_SUFFIXES` are skipped. Pixels follow the rules of
    :func:`read_image` (16-bit samples keep their high byte). Grayscale
    images are widened to RGB when the folder also holds colour ones.

    Mixed sizes are accepted: the result is then ragged (``x_train`` and
    ``x_test`` are lists of arrays, ``Dataset.is_uniform`` is False), and
    :meth:`Dataset.require_uniform_size` says how to get one size.
    ``size=(H, W)`` gives a uniform data set.
    """
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float, np.floating, np.integer)):
        raise TypeError(f"test_fraction must be a number in (0, 1); got {type(test_fraction).__name__}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1); got {test_fraction}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int; got {type(seed).__name__}")
    size = _check_size_option(size, fit)
    path = resolve_data_dir(root)
    train_dir, test_dir = path / "train", path / "test"
    if train_dir.is_dir() != test_dir.is_dir():
        have, lack = ("train", "test") if train_dir.is_dir() else ("test", "train")
        raise DataError(
            f"folder: {str(path)!r} has {have}/ but no {lack}/; give both ({have}/<class>/ and {lack}/<class>/) "
            "or neither (one subfolder per class, split automatically)"
        )
    if train_dir.is_dir():
        classes = _class_folders(train_dir)
        if not classes:
            raise DataError(f"folder: no class subfolders in {str(train_dir)!r}; expected train/<class>/<images>")
        only_test = sorted(set(_class_folders(test_dir)) - set(classes))
        only_test = [c for c in only_test if _image_files(test_dir / c)]
        if only_test:
            raise DataError(
                f"folder: class(es) {', '.join(only_test)} found only under {str(test_dir)!r}; "
                f"every class needs training images under {str(train_dir)!r}/<class>"
            )
        _require_images(train_dir, classes)
        x_tr, y_tr = _read_split(train_dir, classes, size, fit)
        x_te, y_te = _read_split(test_dir, classes, size, fit)
        if not x_te:
            raise DataError(f"folder: no test images under {str(test_dir)!r}; the test set would be empty")
    else:
        classes = _class_folders(path)
        if not classes:
            raise DataError(f"folder: no class subfolders in {str(path)!r}; expected <class>/<images> or train/ and test/")
        _require_images(path, classes)
        images, labels = _read_split(path, classes, size, fit)
        y = np.asarray(labels, dtype=np.int64)
        rng = np.random.default_rng(seed)
        test_mask = np.zeros(len(y), bool)
        for c in np.unique(y):
            idx = np.flatnonzero(y == c)
            k = min(max(1, int(round(test_fraction * len(idx)))), len(idx) - 1)
            test_mask[rng.permutation(idx)[:k]] = True
        if not test_mask.any():
            raise DataError(
                f"folder: every class in {str(path)!r} has one image, so the automatic split leaves the test set empty; "
                "add images, or give train/ and test/ subfolders"
            )
        x_tr = [im for im, t in zip(images, test_mask) if not t]
        x_te = [im for im, t in zip(images, test_mask) if t]
        y_tr, y_te = y[~test_mask], y[test_mask]
    both = _as_channels_last(x_tr + x_te)
    x_tr, x_te = both[: len(x_tr)], both[len(x_tr) :]
    return Dataset(x_tr, np.asarray(y_tr, dtype=np.int64), x_te, np.asarray(y_te, dtype=np.int64), path.name, tuple(classes), str(path))


def _require_images(root: Path, classes: list[str]) -> None:
    empty = [c for c in classes if not _image_files(root / c)]
    if empty:
        raise DataError(
            f"folder: class folder(s) {', '.join(empty)} in {str(root)!r} hold no images ({'/'.join(sorted(IMAGE_SUFFIXES))}); "
            "every class needs training images"
        )


def _load_folder(data_dir: Any = None, **kwargs: Any) -> Dataset:
    return load_image_folder(data_dir, **kwargs)


# The specs helmholtz declares as entry points (group "helmholtz.datasets").
CIFAR10 = DatasetSpec("cifar10", load_cifar10, "image", "quality", "CIFAR-10, 32x32 RGB, 10 classes", downloadable=True)
MNIST = DatasetSpec("mnist", load_mnist, "image", "quality", "MNIST, 28x28 grayscale, 10 classes", downloadable=True)
FOLDER = DatasetSpec("folder", _load_folder, "image", "quality", "a folder of images, one subfolder per class (--data-dir)", resizable=True)
