"""Readers: one interface for every split of every image data set, in memory or on disk.

A :class:`Reader` is one split (``"train"`` or ``"test"``) of an image data
set. It knows its length, its labels (always in memory: 8 bytes an image) and
its class names, and reads images only when asked:

* ``reader[i]`` is one sample ``(image, label)``: a uint8 ``(H, W, C)`` array
  and an int, after the reader's ``transform`` / ``target_transform`` (so a
  reader is a map-style ``torch.utils.data.Dataset``: pass it to a
  ``DataLoader``, with ``transform=helmholtz.transforms.JPEG(20)`` for
  compressed samples);
* ``reader[a:b]`` and ``reader[index_array]`` are a batch ``(images, labels)``:
  uint8 ``(N, H, W, C)`` (a list of ``(H, W, C)`` arrays for a ragged split of
  mixed sizes) and int64 ``(N,)``;
* :meth:`Reader.batches` iterates over batches in order (or over given
  indices), reading each batch once: what :func:`helmholtz.info` and sweep
  preparation stream through, so that their memory stays flat in N;
* :meth:`Reader.take` is a subset view; :meth:`Reader.sample` a seeded random
  one.

Subclasses implement :meth:`Reader._read` (images at sorted indices). The
readers here: :class:`ArrayReader` (arrays or lists in memory, or a memory
map) and :class:`FileReader` (encoded files decoded on access, by the rules
of :mod:`helmholtz._data.decode`). The prepared format's reader is in
:mod:`helmholtz._data.prepared`, the ``hf:`` and ``wds:`` readers in
:mod:`helmholtz._data.external`.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..errors import DataError
from .checks import check_subset_size
from .decode import check_fit, check_size, decode_image, parse_size

__all__ = ["Reader", "ArrayReader", "FileReader", "SubsetReader", "ReaderDataset", "SPLITS", "check_split", "sample_indices", "subset_indices", "flag_option", "reader_options"]

#: The split names every reader answers to; ``"val"`` is accepted for ``"test"`` where a data set calls its held-out split so.
SPLITS = ("train", "test")


def check_split(split: Any) -> str:
    """``"train"`` or ``"test"`` (``"val"`` and ``"validation"`` mean ``"test"``), else a ValueError naming ``split``."""
    if split in ("val", "validation"):
        return "test"
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test' ('val' is the test split of data sets that call it so); got {split!r}")
    return split


def flag_option(value: Any, name: str) -> bool:
    """A boolean option, also from a name's ``?key=value`` text (``1/0``, ``true/false``, ``yes/no``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "0", "false", "no"):
        return value.lower() in ("1", "true", "yes")
    raise ValueError(f"{name} must be true or false; got {value!r}")


def reader_options(size: Any, fit: str, skip_bad: Any, exact: Any) -> dict:
    """The options of a file reader, checked (text from a name's ``?key=value`` is accepted)."""
    if isinstance(size, str):
        size = parse_size(size)
    return {"size": check_size(size), "fit": check_fit(fit), "skip_bad": flag_option(skip_bad, "skip_bad"), "exact": flag_option(exact, "exact")}


def sample_indices(n: int, size: Any, seed: Any = 0) -> np.ndarray:
    """Sorted indices of a seeded uniform random sample of ``size`` out of ``n`` (all when ``size`` is None).

    A uniform sample without replacement draws from every class in proportion,
    unlike the first ``size`` of a class-ordered set.

    Raises
    ------
    TypeError
        ``size`` or ``seed`` not an int.
    ValueError
        ``size`` < 1.
    """
    if size is None:
        return np.arange(n)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"limit must be an int or None; got {type(size).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int; got {type(seed).__name__}")
    if size < 1:
        raise ValueError(f"limit must be >= 1; got {size}")
    if size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(int(seed)).choice(n, size=int(size), replace=False))


class Reader:
    """One split of an image data set (see the module docstring).

    Attributes
    ----------
    name : str
        The data set's name.
    split : str
        ``"train"`` or ``"test"``.
    classes : tuple of str
        Class names; label ``k`` is ``classes[k]``.
    source : str
        Where the images come from, named in messages.
    labels : ndarray
        int64 ``(N,)``.
    transform, target_transform : callable, optional
        Applied by ``reader[i]`` to the image and the label (torchvision's convention).
    """

    name: str
    split: str
    classes: tuple
    source: str
    labels: np.ndarray
    transform: Callable | None = None
    target_transform: Callable | None = None

    # --- what a subclass provides
    def _read(self, indices: np.ndarray) -> np.ndarray | list[np.ndarray]:
        """Images at ``indices`` (sorted, unique, in range): uint8 ``(N, H, W, C)`` or a list."""
        raise NotImplementedError

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        """``(H, W, C)`` when every image has it, else None (a ragged split)."""
        raise NotImplementedError

    def _identity(self) -> str:
        """A string that changes whenever the images or labels could (for :meth:`fingerprint`)."""
        raise NotImplementedError

    # --- the interface
    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def is_uniform(self) -> bool:
        return self.image_shape is not None

    def _index(self, key: Any) -> np.ndarray:
        n = len(self)
        if isinstance(key, slice):
            return np.arange(n)[key]
        idx = np.asarray(key)
        if idx.dtype == np.bool_ or not np.issubdtype(idx.dtype, np.integer) or idx.ndim != 1:
            raise TypeError(f"a reader is indexed by an int, a slice or a 1-D integer array; got {key!r:.80}")
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"index out of range for a split of {n} images")
        return np.where(idx < 0, idx + n, idx)

    def read(self, indices: Any) -> np.ndarray | list[np.ndarray]:
        """The images at ``indices`` (any order, repeats allowed), without transforms."""
        idx = self._index(indices)
        if idx.size == 0:
            shape = self.image_shape
            return np.empty((0, *shape), np.uint8) if shape is not None else []
        order = np.argsort(idx, kind="stable")
        sorted_idx = idx[order]
        unique, inverse = np.unique(sorted_idx, return_inverse=True)
        images = self._read(unique)
        if isinstance(images, list):
            picked = [images[j] for j in inverse]
            out: list = [None] * len(idx)
            for pos, im in zip(order, picked):
                out[pos] = im
            return out
        if unique.size == idx.size and np.array_equal(unique, idx):
            return images
        result = np.empty((idx.size, *images.shape[1:]), np.uint8)
        result[order] = images[inverse]
        return result

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            i = int(key)
            n = len(self)
            if not -n <= i < n:
                raise IndexError(f"index {i} out of range for a split of {n} images")
            i %= n
            image = self.read(np.array([i]))[0]
            label = int(self.labels[i])
            if self.transform is not None:
                image = self.transform(image)
            if self.target_transform is not None:
                label = self.target_transform(label)
            return image, label
        idx = self._index(key)
        return self.read(idx), self.labels[idx]

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        for i in range(len(self)):
            yield self[i]

    def batches(self, batch_size: int = 256, indices: Any = None) -> Iterator[tuple[Any, np.ndarray]]:
        """``(images, labels)`` batches of ``batch_size`` in order (or of ``indices`` in their order).

        Only one batch is held at a time.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1; got {batch_size!r}")
        idx = np.arange(len(self)) if indices is None else self._index(indices)
        for start in range(0, idx.size, int(batch_size)):
            part = idx[start : start + int(batch_size)]
            yield self.read(part), self.labels[part]

    def take(self, indices: Any) -> "Reader":
        """A view of the images at ``indices`` (a subset; nothing is read)."""
        return SubsetReader(self, self._index(indices))

    def sample(self, size: int | None, seed: int = 0) -> "Reader":
        """A seeded uniform random subset of ``size`` images (see :func:`sample_indices`); all for None."""
        if size is None:
            return self
        return self.take(sample_indices(len(self), size, seed))

    def fingerprint(self) -> str:
        """SHA-256 naming this split's contents, from cheap facts (files, sizes, manifest), not from the pixels."""
        h = hashlib.sha256()
        h.update(self._identity().encode())
        h.update(self.labels.astype("<i8").tobytes())
        h.update("\0".join(self.classes).encode())
        return h.hexdigest()

    def with_transform(self, transform: Callable | None = None, target_transform: Callable | None = None) -> "Reader":
        """This reader with ``transform`` / ``target_transform`` set (returns self, for chaining)."""
        for name, value in (("transform", transform), ("target_transform", target_transform)):
            if value is not None and not callable(value):
                raise TypeError(f"{name} must be callable or None; got {type(value).__name__}")
        self.transform, self.target_transform = transform, target_transform
        return self

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.image_shape)) if self.image_shape else "mixed sizes"
        return f"<{type(self).__name__} {self.name} {self.split}: {len(self)} images, {shape}, {self.num_classes} classes>"


class ArrayReader(Reader):
    """A split held in memory: a uint8 ``(N, H, W, C)`` array (or memory map), or a list of ``(H, W, C)`` arrays.

    Parameters
    ----------
    images : ndarray or list of ndarray
    labels : array_like
        int64-convertible ``(N,)``.
    name, split, classes, source
        As the attributes of :class:`Reader`.
    identity : str, optional
        What :meth:`Reader.fingerprint` hashes instead of the pixels (default:
        the pixels themselves, hashed once and cached).
    """

    def __init__(self, images: Any, labels: Any, *, name: str = "dataset", split: str = "train", classes: Sequence[str] = (),
                 source: str = "", identity: str | None = None) -> None:
        if isinstance(images, tuple):
            images = list(images)
        if isinstance(images, np.ndarray):
            if images.dtype != np.uint8 or images.ndim != 4:
                raise DataError(f"{name} {split}: images must be uint8 (N, H, W, C); got {images.dtype} {images.shape}")
        elif not isinstance(images, list):
            raise DataError(f"{name} {split}: images must be a uint8 array (N, H, W, C) or a list of (H, W, C) arrays; got {type(images).__name__}")
        self.images = images
        self.labels = np.asarray(labels).astype(np.int64, copy=False)
        if self.labels.shape != (len(images),):
            raise DataError(f"{name} {split}: expected one label per image, shape ({len(images)},); got {self.labels.shape}")
        self.name, self.split, self.classes, self.source = name, split, tuple(classes), source
        self._given_identity = identity
        self._hash: str | None = None

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        if isinstance(self.images, np.ndarray):
            return tuple(self.images.shape[1:])  # type: ignore[return-value]
        shapes = {im.shape for im in self.images}
        return next(iter(shapes)) if len(shapes) == 1 else None

    def _read(self, indices: np.ndarray) -> np.ndarray | list[np.ndarray]:
        if isinstance(self.images, np.ndarray):
            if indices.size and indices[-1] - indices[0] + 1 == indices.size:  # a run: a view, no gather
                return np.asarray(self.images[indices[0] : indices[-1] + 1])
            return self.images[indices]
        return [self.images[i] for i in indices]

    def _identity(self) -> str:
        if self._given_identity is not None:
            return self._given_identity
        if self._hash is None:
            h = hashlib.sha256()
            arrays = [self.images] if isinstance(self.images, np.ndarray) else self.images
            for a in arrays:
                a = np.ascontiguousarray(a)
                h.update(f"{a.shape};".encode())
                if a.size:
                    h.update(memoryview(a).cast("B"))
            self._hash = h.hexdigest()
        return self._hash


class SubsetReader(Reader):
    """The images of ``base`` at ``indices``, in that order (a view: nothing is read until asked)."""

    def __init__(self, base: Reader, indices: np.ndarray) -> None:
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64)
        self.labels = base.labels[self.indices]
        self.name, self.split, self.classes, self.source = base.name, base.split, base.classes, base.source
        self.transform, self.target_transform = base.transform, base.target_transform

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        return self.base.image_shape

    def _read(self, indices: np.ndarray) -> np.ndarray | list[np.ndarray]:
        return self.base.read(self.indices[indices])

    def _identity(self) -> str:
        h = hashlib.sha256(self.indices.astype("<i8").tobytes()).hexdigest()
        return f"{self.base.fingerprint()}|subset:{h}"


class FileReader(Reader):
    """Encoded image files (or byte strings), decoded on access by :func:`helmholtz._data.decode.decode_image`.

    Parameters
    ----------
    files : list of path
        One file per image, in the split's order.
    labels : array_like
        int ``(N,)``.
    size : (int, int), optional
        Bring every image to ``(H, W)`` by ``fit``; without it the split is
        ragged unless its images happen to share one size.
    fit : {"crop", "pad", "stretch"}
    mode : {"RGB", "L", None}
        See :mod:`helmholtz._data.decode` (photo data sets use ``"RGB"``).
    skip_bad : bool
        Where a file cannot be decoded: False raises a DataError naming it;
        True gives a black image in a batch read and records the file in
        :attr:`bad` (``helmholtz prepare --skip-bad`` leaves such images out
        and counts them).
    exact : bool
        Decode JPEGs at full size before resizing (see the decode rules).
    """

    def __init__(self, files: Sequence[str | os.PathLike], labels: Any, *, name: str, split: str, classes: Sequence[str], source: str,
                 size: tuple[int, int] | None = None, fit: str = "crop", mode: str | None = "RGB", skip_bad: bool = False,
                 exact: bool = False) -> None:
        self.files = [str(f) for f in files]
        self.labels = np.asarray(labels, dtype=np.int64)
        if self.labels.shape != (len(self.files),):
            raise DataError(f"{name} {split}: expected one label per file, shape ({len(self.files)},); got {self.labels.shape}")
        self.name, self.split, self.classes, self.source = name, split, tuple(classes), source
        self.size = check_size(size)
        self.fit = check_fit(fit)
        if mode not in ("RGB", "L", None):
            raise ValueError(f"mode must be 'RGB', 'L' or None; got {mode!r}")
        self.mode = mode
        self.skip_bad = bool(skip_bad)
        self.exact = bool(exact)
        self.bad: list[str] = []

    @property
    def channels(self) -> int | None:
        return 3 if self.mode == "RGB" else 1 if self.mode == "L" else None

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        if self.size is not None and self.channels is not None:
            return (*self.size, self.channels)
        return None

    def decode(self, i: int) -> np.ndarray | None:
        """Image ``i`` as uint8 ``(H, W, C)``; None for a bad file when ``skip_bad``."""
        try:
            arr = decode_image(self.files[i], size=self.size, fit=self.fit, mode=self.mode, where=f"{self.name}: {self.files[i]!r}", exact=self.exact)
        except DataError:
            if not self.skip_bad:
                raise
            self.bad.append(self.files[i])
            return None
        return arr[..., None] if arr.ndim == 2 else arr

    def _read(self, indices: np.ndarray) -> np.ndarray | list[np.ndarray]:
        images = [self.decode(int(i)) for i in indices]
        shape = self.image_shape
        if shape is not None:
            out = np.zeros((len(images), *shape), np.uint8)
            for k, im in enumerate(images):
                if im is not None:
                    out[k] = im
            return out
        return [im if im is not None else np.zeros((1, 1, 3 if self.mode != "L" else 1), np.uint8) for im in images]

    def _identity(self) -> str:
        h = hashlib.sha256()
        for f in self.files:
            try:
                st = os.stat(f)
                h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            except OSError:
                h.update(f"{f}\0missing\n".encode())
        h.update(f"size={self.size};fit={self.fit};mode={self.mode};exact={self.exact}".encode())
        return h.hexdigest()


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


class ReaderDataset:
    """A data set's train and test splits as readers (lazy: images are read when asked).

    It offers what sweeps and ``helmholtz info`` use of :class:`helmholtz.data.Dataset`
    (``y_train``, ``y_test``, ``classes``, ``image_shape``, ``subset``,
    :meth:`reader`) without holding the images.
    """

    def __init__(self, train: Reader, test: Reader, *, name: str, classes: Sequence[str], source: str) -> None:
        self.train, self.test = train, test
        self.name, self.classes, self.source = name, tuple(classes), source

    def reader(self, split: str = "train") -> Reader:
        return self.train if check_split(split) == "train" else self.test

    @property
    def y_train(self) -> np.ndarray:
        return self.train.labels

    @property
    def y_test(self) -> np.ndarray:
        return self.test.labels

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def is_uniform(self) -> bool:
        return self.train.image_shape is not None and self.train.image_shape == self.test.image_shape

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.require_uniform_size()

    def require_uniform_size(self, how: str = "give a size (size=(H, W), or --image-size HxW), or prepare it with helmholtz prepare --size HxW") -> tuple:
        if not self.is_uniform:
            raise DataError(f"{self.name} ({self.source}): its images have no one size; training needs one size: {how}")
        return self.train.image_shape  # type: ignore[return-value]

    @property
    def fingerprint(self) -> str:
        """SHA-256 naming both splits' contents (see :meth:`Reader.fingerprint`)."""
        return hashlib.sha256(f"{self.train.fingerprint()}|{self.test.fingerprint()}".encode()).hexdigest()

    def subset(self, train: int | None = None, test: int | None = None, seed: int = 0) -> "ReaderDataset":
        """Fixed random subsets, drawn as :meth:`helmholtz.data.Dataset.subset` draws them (views: nothing is read)."""
        tr = subset_indices(len(self.train), train, seed, "train_subset", "train")
        te = subset_indices(len(self.test), test, seed, "test_subset", "test")
        return self._with(self.train.take(tr) if train is not None else self.train, self.test.take(te) if test is not None else self.test)

    def _with(self, train: Reader, test: Reader) -> "ReaderDataset":
        return ReaderDataset(train, test, name=self.name, classes=self.classes, source=self.source)

    def __repr__(self) -> str:
        return f"<ReaderDataset {self.name}: {len(self.train)} train, {len(self.test)} test, {self.num_classes} classes>"
