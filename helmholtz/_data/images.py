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
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._extras import require
from ..errors import DataError
from .checks import check_subset_size, integer_labels
from .paths import resolve_data_dir
from .registry import DatasetSpec
from .decode import FITS, check_fit, check_size, decode_image, image_size_of
from .readers import ArrayReader, Reader, check_split, subset_indices
from .safety import MAX_MEMORY_BYTES_ENV, check_expanded_size, check_memory_size, gunzip, load_cifar_pickle, max_memory_bytes, read_npz, read_tar_members

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
    "download_file",
    "md5_of",
    "read_file",
    "read_idx",
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
_HOW_TO_ONE_SIZE = "load the folder with size=(H, W) (load_image_folder(root, size=(32, 32)), fit 'crop', 'pad' or 'stretch')"


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

    def reader(self, split: str = "train") -> Reader:
        """Split ``split`` (``"train"`` or ``"test"``) as a :class:`~helmholtz._data.readers.Reader` (a view: nothing is copied)."""
        split = check_split(split)
        x, y = (self.x_train, self.y_train) if split == "train" else (self.x_test, self.y_test)
        return ArrayReader(x, y, name=self.name, split=split, classes=self.classes, source=self.source)

    @property
    def train(self) -> Reader:
        """The training split as a reader (see :meth:`reader`)."""
        return self.reader("train")

    @property
    def test(self) -> Reader:
        """The test split as a reader (see :meth:`reader`)."""
        return self.reader("test")

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


def md5_of(path: Path | None = None, data: bytes | None = None) -> str:
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
    given, is the ``(H, W, C)`` every image must have. Both splits must hold
    images. Images must be uint8
    and labels integers (see :class:`Dataset`); the arrays' declared sizes
    are checked against ``HELMHOLTZ_MAX_BYTES`` before they are read.

    Raises
    ------
    DataError
        Naming the file: it is missing, not a zip, truncated or corrupt,
        lacks an array, would expand beyond the limit, holds an empty split,
        or arrays of the wrong shape, dtype or labels.
    """
    path = Path(path)
    arrays = read_npz(path, ("x_train", "y_train", "x_test", "y_test"), what=name)
    for split in ("train", "test"):
        x = arrays[f"x_{split}"]
        if x.ndim in (3, 4) and x.shape[0] == 0:
            raise DataError(f"{name}: x_{split} in {str(path)!r} holds no images; expected a non-empty {split} split")
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
    download_file([CIFAR10_URL], target, CIFAR10_MD5)
    return target


def download_file(urls, target: Path, md5: str | None, check_uncompressed: str | None = None) -> None:
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
        got = md5_of(tmp) if md5 is not None else None
        if md5 is not None and got != md5:
            tmp.unlink(missing_ok=True)
            raise DataError(f"download of {url} has MD5 {got}; expected {md5}")
        if check_uncompressed is not None:
            try:
                got = md5_of(data=gunzip(tmp, "download"))
            except DataError:
                tmp.unlink(missing_ok=True)
                raise
            if got != check_uncompressed:
                tmp.unlink(missing_ok=True)
                raise DataError(f"download of {url} decompresses to MD5 {got}; expected {check_uncompressed}")
        tmp.replace(target)
        return
    raise DataError(f"could not download {target.name} ({last}); place it in {target.parent} by hand")


def read_file(path: Path, what: str) -> bytes:
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
            return read_file(p, "cifar10")

        return _cifar_batches(read, str(folder))
    archive = root / "cifar-10-python.tar.gz"
    if not archive.is_file() and download:
        download_cifar10(root)
    if archive.is_file():
        if verify and md5_of(archive) != CIFAR10_MD5:
            raise DataError(f"cifar10: {str(archive)!r} has the wrong MD5 (expected {CIFAR10_MD5}); delete it and download again")
        members = read_tar_members(archive, [f"cifar-10-batches-py/{m}" for m in _CIFAR_MEMBERS], "cifar10")
        return _cifar_batches(lambda m: members[f"cifar-10-batches-py/{m}"], str(archive))
    raise DataError(
        f"cifar10: none of cifar10.npz, cifar-10-batches-py/ or cifar-10-python.tar.gz in {str(root)!r}; "
        f"download {CIFAR10_URL} there (or pass download=True to fetch it)"
    )


def read_idx(data: bytes, name: str, ndim: int, what: str = "mnist") -> np.ndarray:
    """The uint8 array of an IDX file's bytes (MNIST's format), checked against its header."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{what}: {name} is not an unsigned-byte IDX file")
    if data[3] != ndim:
        raise DataError(f"{what}: {name} holds a {data[3]}-D array; expected {ndim}-D")
    if len(data) < 4 + 4 * ndim:
        raise DataError(f"{what}: {name} is truncated inside its header")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims, dtype=object)):
        raise DataError(f"{what}: {name} holds {body.size} bytes; its header says {dims}")
    return body.reshape(dims)


def download_mnist(data_dir: str | os.PathLike) -> None:
    """Download the four MNIST IDX ``.gz`` files into ``data_dir``, checking MD5s."""
    for stem, md5 in MNIST_FILES.items():
        target = Path(data_dir) / f"{stem}.gz"
        if not target.is_file():
            download_file([m + stem + ".gz" for m in MNIST_MIRRORS], target, None, check_uncompressed=md5)


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
                raw = gunzip(candidate, "mnist") if candidate.suffix == ".gz" else read_file(candidate, "mnist")
                if verify and md5_of(data=raw) != md5:
                    raise DataError(f"mnist: {str(candidate)!r} has the wrong MD5 (expected {md5} uncompressed)")
                images = "images" in stem
                arr = read_idx(raw, str(candidate), 3 if images else 1)
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
def read_image(path: str | os.PathLike, size: tuple[int, int] | None = None, fit: str = "crop") -> np.ndarray:
    """One image file as uint8: ``(H, W)`` for grayscale, ``(H, W, 3)`` for colour.

    Pixels are converted by the rules of :mod:`helmholtz._data.decode`
    (``mode=None``: grayscale stays grayscale): 16-bit samples keep their
    high byte, 32-bit and float images are refused, and images over the
    pixel limit are refused before they are decoded.

    Parameters
    ----------
    path : path
    size : (int, int), optional
        ``(H, W)`` to bring the image to; default its own size.
    fit : {"crop", "pad", "stretch"}
        With ``size``: ``"crop"`` scales the shorter side to fit and cuts the
        centre; ``"pad"`` scales the longer side to fit and pads with black;
        ``"stretch"`` resamples to exactly ``(H, W)`` (aspect not kept). All
        bicubic and deterministic.

    Returns
    -------
    ndarray
        uint8 ``(H, W)`` or ``(H, W, 3)``.

    Raises
    ------
    DataError
        Naming the file: unreadable, corrupt or truncated, a refused mode, or
        a decompression bomb.

    Notes
    -----
    * 8-bit grayscale (modes ``1``, ``L``, ``LA``) stays grayscale; every other
      8-bit mode (palette, RGB, RGBA, CMYK, ...) becomes RGB through Pillow's
      ``convert("RGB")``; an alpha channel is dropped, not composited.
    * 16-bit samples keep their high byte, ``v >> 8`` (0x12FF becomes 0x12).
    * 32-bit integer and float images (modes ``I``, ``F``) are refused.
    * An image over ``HELMHOLTZ_MAX_IMAGE_PIXELS`` pixels (default Pillow's
      ``MAX_IMAGE_PIXELS``) is refused before it is decoded, and so is one
      that Pillow's own decompression-bomb guard refuses.
    """
    size = _check_size_option(size, fit)
    return decode_image(path, size=size, fit=fit, mode=None, where=f"folder: {str(path)!r}", exact=True)


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def _class_folders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and _visible(p))


def _image_files(folder: Path) -> list[Path]:
    # scandir knows each entry's type from the directory itself: no stat per file (ImageNet's classes hold 1,300 each)
    with os.scandir(folder) as entries:
        names = [e.name for e in entries if not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES and e.is_file()]
    return [folder / name for name in sorted(names)]


def _split_files(root: Path, classes: list[str]) -> list[tuple[Path, int]]:
    files = []
    for label, cls in enumerate(classes):
        folder = root / cls
        if folder.is_dir():
            files += [(f, label) for f in _image_files(folder)]
    return files


def _check_folder_memory(files: list[tuple[Path, int]], size, where: Path) -> None:
    """Refuse, from the headers alone, a folder whose images would not fit the in-memory limit."""
    if size is not None:
        total = len(files) * size[0] * size[1] * 3
    else:
        total = 0
        limit = max_memory_bytes()
        for f, _ in files:
            h, w = image_size_of(f, f"folder: {str(f)!r}")
            total += h * w * 3
            if total > limit:
                break
    check_memory_size(total, f"folder {str(where)!r}",
                      f"prepare it once (helmholtz prepare folder --data-dir {str(where)!r} --size HxW --out DIR) and use the prepared set, "
                      f"which streams from disk, or raise {MAX_MEMORY_BYTES_ENV}")


def _read_split(files: list[tuple[Path, int]], size, fit) -> tuple[list[np.ndarray], list[int]]:
    return [read_image(f, size, fit) for f, _ in files], [label for _, label in files]


def _as_channels_last(images: list[np.ndarray]) -> list[np.ndarray]:
    """Grayscale images get a channel axis; when colour is present they are widened to RGB."""
    colour = any(im.ndim == 3 for im in images)
    if colour:
        return [np.repeat(im[..., None], 3, axis=2) if im.ndim == 2 else im for im in images]
    return [im[..., None] for im in images]


def _check_size_option(size: Any, fit: Any) -> tuple[int, int] | None:
    check_fit(fit)
    return check_size(size)


def load_image_folder(
    root: str | os.PathLike | None = None,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    size: tuple[int, int] | None = None,
    fit: str = "crop",
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
    fit : {"crop", "pad", "stretch"}
        How ``size`` is reached (see :func:`read_image`); never a silent stretch.

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
        image (see :func:`read_image`), or a folder whose images would
        decode to more than ``HELMHOLTZ_MAX_MEMORY_BYTES`` together (read
        from the files' headers before anything is decoded; prepare such a
        folder with ``helmholtz prepare`` instead).

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
    classes, train_files, test_files = folder_splits(path, test_fraction, seed)
    _check_folder_memory(train_files + test_files, size, path)
    x_tr, y_tr = _read_split(train_files, size, fit)
    x_te, y_te = _read_split(test_files, size, fit)
    both = _as_channels_last(x_tr + x_te)
    x_tr, x_te = both[: len(x_tr)], both[len(x_tr) :]
    return Dataset(x_tr, np.asarray(y_tr, dtype=np.int64), x_te, np.asarray(y_te, dtype=np.int64), path.name, tuple(classes), str(path))


def folder_splits(path: Path, test_fraction: float = 0.2, seed: int = 0) -> tuple[list[str], list[tuple[Path, int]], list[tuple[Path, int]]]:
    """The classes and the ``(file, label)`` lists of train and test of an image folder (see :func:`load_image_folder`'s Notes)."""
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
        train_files, test_files = _split_files(train_dir, classes), _split_files(test_dir, classes)
        if not test_files:
            raise DataError(f"folder: no test images under {str(test_dir)!r}; the test set would be empty")
        return classes, train_files, test_files
    classes = _class_folders(path)
    if not classes:
        raise DataError(f"folder: no class subfolders in {str(path)!r}; expected <class>/<images> or train/ and test/")
    _require_images(path, classes)
    files = _split_files(path, classes)
    y = np.asarray([label for _, label in files], dtype=np.int64)
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
    return classes, [f for f, t in zip(files, test_mask) if not t], [f for f, t in zip(files, test_mask) if t]


def open_image_folder(root: Any = None, *, test_fraction: Any = 0.2, seed: Any = 0, size: Any = None, fit: str = "crop",
                      skip_bad: Any = False, exact: Any = False) -> Any:
    """An image folder as train and test readers of its files, decoded on access (nothing is decoded here).

    The split, classes and file order are :func:`load_image_folder`'s. The
    images are RGB unless every file is grayscale (read from the headers),
    as the in-memory loader widens them; ``size``/``fit`` as there.
    """
    from .readers import ReaderDataset, flag_option

    if isinstance(test_fraction, str):
        test_fraction = float(test_fraction)
    if isinstance(seed, str):
        seed = int(seed)
    if isinstance(size, str):
        from .decode import parse_size

        size = parse_size(size)
    path = resolve_data_dir(root)
    classes, train_files, test_files = folder_splits(path, test_fraction, seed)
    gray = _all_grayscale([f for f, _ in train_files + test_files])
    common = dict(name=path.name, classes=classes, source=str(path), size=check_size(size), fit=check_fit(fit), mode="L" if gray else "RGB",
                  skip_bad=flag_option(skip_bad, "skip_bad"), exact=flag_option(exact, "exact"))
    from .readers import FileReader

    return ReaderDataset(FileReader([f for f, _ in train_files], [y for _, y in train_files], split="train", **common),
                         FileReader([f for f, _ in test_files], [y for _, y in test_files], split="test", **common),
                         name=path.name, classes=classes, source=str(path))


def _all_grayscale(files: list[Path]) -> bool:
    from PIL import Image

    for f in files:
        try:
            with Image.open(f) as im:
                if im.mode not in ("1", "L", "LA", "La", "I;16", "I;16L", "I;16B", "I;16N", "I"):
                    return False
        except Exception:  # noqa: BLE001 - an unreadable file is reported when it is decoded
            return False
    return True


def _require_images(root: Path, classes: list[str]) -> None:
    empty = [c for c in classes if not _image_files(root / c)]
    if empty:
        raise DataError(
            f"folder: class folder(s) {', '.join(empty)} in {str(root)!r} hold no images ({'/'.join(sorted(IMAGE_SUFFIXES))}); "
            "every class needs training images"
        )


def _load_folder(data_dir: Any = None, **kwargs: Any) -> Dataset:
    return load_image_folder(data_dir, **kwargs)


def open_folder_at(path: Any, data_dir: Any = None, **kwargs: Any) -> Any:
    """:func:`open_image_folder` of ``path`` (a data set named by its folder)."""
    p = Path(path).expanduser()
    if not p.is_dir() and data_dir is not None:
        p = Path(data_dir).expanduser() / path
    return open_image_folder(p, **kwargs)


def _open_folder(data_dir: Any = None, **kwargs: Any) -> Any:
    return open_image_folder(data_dir, **kwargs)


def load_folder_at(path: Any, data_dir: Any = None, **kwargs: Any) -> Dataset:
    """:func:`load_image_folder` of ``path`` (a data set named by its folder); ``data_dir`` resolves a relative path."""
    p = Path(path).expanduser()
    if not p.is_dir() and data_dir is not None:
        p = Path(data_dir).expanduser() / path
    for key in ("test_fraction", "seed"):
        if isinstance(kwargs.get(key), str):
            try:
                kwargs[key] = (float if key == "test_fraction" else int)(kwargs[key])
            except ValueError:
                raise ValueError(f"{key} must be a number; got {kwargs[key]!r}") from None
    return load_image_folder(p, **kwargs)


# The specs helmholtz declares as entry points (group "helmholtz.datasets").
CIFAR10 = DatasetSpec("cifar10", load_cifar10, "image", "quality", "CIFAR-10, 32x32 RGB, 10 classes", downloadable=True)
MNIST = DatasetSpec("mnist", load_mnist, "image", "quality", "MNIST, 28x28 grayscale, 10 classes", downloadable=True)
FOLDER = DatasetSpec("folder", _load_folder, "image", "quality", "a folder of images, one subfolder per class (--data-dir)", resizable=True,
                     opener=_open_folder)
