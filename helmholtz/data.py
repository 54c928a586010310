"""Data sets for the experiments: the image data sets of the field, readers that stream them, prepared sets, audio.

:func:`open` gives one split of any image data set as a reader: ``len``,
``reader[i]`` (a sample), ``reader[a:b]`` (a batch), :meth:`Reader.batches`,
``.classes``; it is a map-style torch ``Dataset`` (pass
``transform=helmholtz.transforms.JPEG(20)``). Readers read images only when
asked, so memory stays flat whatever the data set's size. The names it takes
(and ``helmholtz sweep --dataset`` / ``info --dataset`` / ``prepare``):
``cifar10``, ``cifar100``, ``mnist``, ``fashion-mnist``, ``svhn``,
``tiny-imagenet``, ``imagenet32``, ``imagenet64``, ``imagenet``,
``places365``, ``folder``, a path to an ``.npz``, ``hf:NAME_OR_PATH``,
``wds:SHARDS``, and ``prepared:DIR`` (or a prepared ``DIR``), the format
:func:`prepare` writes: memory-mappable uint8 shards decoded once
(:mod:`helmholtz._data.prepared`). The official layouts each name reads are
listed in :mod:`helmholtz._data.sources` and :mod:`helmholtz._data.external`;
how images are decoded and brought to one size, in :mod:`helmholtz._data.decode`.

Image loaders return a :class:`Dataset` of uint8 channels-last images and
int64 labels, train and test. Sources, tried in order:

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
    ``ROOT/<class>/*``, split deterministically), any format Pillow reads
    (:func:`read_image` gives the pixel rules: 16-bit samples keep their
    high byte). Mixed sizes give a *ragged* data set (lists of arrays,
    ``Dataset.is_uniform`` False); ``size=(H, W)`` resizes or centre-crops
    every image to one size, and :meth:`Dataset.require_uniform_size` is
    what training calls first.

Audio data sets (:class:`AudioDataset`): ``fsdd`` (the Free Spoken Digit
Dataset from ``fsdd.npz``, official split) and ``audio-folder``
(``ROOT/<class>/**/*.wav|flac``).

Validation happens once, as a data set is loaded or built. A bad file is a
:class:`DataError` that names it and says what was expected; a bad argument
is a ``TypeError``/``ValueError`` naming the argument:

* labels are integers in ``0 .. len(classes) - 1``; float labels are
  refused, never truncated, and so are negative ones;
* a subset larger than its split is an error, not "all of it";
* a folder that would leave a class without training images, or the test
  set empty, is an error, and so is a class found only under ``test/``;
* CIFAR pickles are read by an unpickler that resolves only NumPy's array
  reconstruction, so a crafted pickle runs nothing;
* truncated or corrupt files (zip, gzip, tar, pickle, image, audio) are
  reported as such;
* nothing expands past ``HELMHOLTZ_MAX_BYTES`` (:data:`DEFAULT_MAX_BYTES`,
  4 GiB, per file) or ``HELMHOLTZ_MAX_IMAGE_PIXELS``
  (:data:`DEFAULT_MAX_IMAGE_PIXELS`, Pillow's limit, per image): set them
  in the environment to change the limits.

The data folder is the ``data_dir`` argument, else the ``HELMHOLTZ_DATA``
environment variable. Nothing is downloaded unless asked for.

Data sets are known by name through :func:`get_spec` / :func:`load_dataset`;
a package adds its own with an entry point in the group
``helmholtz.datasets`` (or :func:`register_dataset`), naming a
:class:`DatasetSpec`.
"""

from __future__ import annotations

from ._data.api import open_dataset
from ._data.api import open_split as open
from ._data.decode import FITS, decode_image, fit_array, parse_size
from ._data.prepared import PreparedDataset, PreparedReader, is_prepared, prepare, read_manifest
from ._data.readers import ArrayReader, FileReader, Reader, ReaderDataset, SubsetReader, sample_indices
from ._data.sources import load_cifar100, load_downsampled_imagenet, load_fashion_mnist, load_imagenet, load_places365, load_svhn, load_tiny_imagenet
from ._data.audio import AUDIO_EXTENSIONS, AudioDataset, load_audio_folder, load_fsdd, read_audio, stratified_test_mask
from ._data.images import (
    CIFAR10_MD5,
    CIFAR10_URL,
    IMAGE_SUFFIXES,
    MNIST_FILES,
    Dataset,
    download_cifar10,
    download_mnist,
    load_cifar10,
    load_image_folder,
    load_mnist,
    load_npz,
    read_image,
    subset_indices,
)
from ._data.paths import ENV_VAR, find_data_file, resolve_data_dir
from ._data.registry import DatasetSpec, dataset_names, get_spec, load_dataset, register_dataset
from ._data.safety import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_IMAGE_PIXELS,
    DEFAULT_MAX_MEMORY_BYTES,
    MAX_BYTES_ENV,
    MAX_IMAGE_PIXELS_ENV,
    MAX_MEMORY_BYTES_ENV,
    max_bytes,
    max_image_pixels,
    max_memory_bytes,
)
from .errors import DataError

__all__ = [
    "open",
    "open_dataset",
    "prepare",
    "Reader",
    "ArrayReader",
    "FileReader",
    "SubsetReader",
    "PreparedReader",
    "PreparedDataset",
    "ReaderDataset",
    "is_prepared",
    "read_manifest",
    "decode_image",
    "fit_array",
    "parse_size",
    "sample_indices",
    "load_cifar100",
    "load_svhn",
    "load_fashion_mnist",
    "load_tiny_imagenet",
    "load_downsampled_imagenet",
    "load_imagenet",
    "load_places365",
    "DEFAULT_MAX_MEMORY_BYTES",
    "MAX_MEMORY_BYTES_ENV",
    "max_memory_bytes",
    "AUDIO_EXTENSIONS",
    "CIFAR10_MD5",
    "CIFAR10_URL",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_IMAGE_PIXELS",
    "ENV_VAR",
    "FITS",
    "IMAGE_SUFFIXES",
    "MAX_BYTES_ENV",
    "MAX_IMAGE_PIXELS_ENV",
    "MNIST_FILES",
    "AudioDataset",
    "DataError",
    "Dataset",
    "DatasetSpec",
    "dataset_names",
    "download_cifar10",
    "download_mnist",
    "find_data_file",
    "get_spec",
    "load_audio_folder",
    "load_cifar10",
    "load_dataset",
    "load_fsdd",
    "load_image_folder",
    "load_mnist",
    "load_npz",
    "max_bytes",
    "max_image_pixels",
    "read_audio",
    "read_image",
    "register_dataset",
    "resolve_data_dir",
    "stratified_test_mask",
    "subset_indices",
]
