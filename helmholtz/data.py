"""Data sets for the experiments: CIFAR-10, MNIST, image folders, FSDD and audio folders.

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

Audio data sets (:class:`AudioDataset`): ``fsdd`` (the Free Spoken Digit
Dataset from ``fsdd.npz``, official split) and ``audio-folder``
(``ROOT/<class>/**/*.wav|flac``).

Data sets are known by name through :func:`get_spec` / :func:`load_dataset`;
a package adds its own with an entry point in the group
``helmholtz.datasets`` (or :func:`register_dataset`), naming a
:class:`DatasetSpec`.
"""

from __future__ import annotations

from ._data.audio import AUDIO_EXTENSIONS, AudioDataset, load_audio_folder, load_fsdd, read_audio, stratified_test_mask
from ._data.images import (
    CIFAR10_MD5,
    CIFAR10_URL,
    MNIST_FILES,
    Dataset,
    download_cifar10,
    download_mnist,
    load_cifar10,
    load_image_folder,
    load_mnist,
    load_npz,
    subset_indices,
)
from ._data.paths import ENV_VAR, find_data_file, resolve_data_dir
from ._data.registry import DatasetSpec, dataset_names, get_spec, load_dataset, register_dataset
from .errors import DataError

__all__ = [
    "AUDIO_EXTENSIONS",
    "CIFAR10_MD5",
    "CIFAR10_URL",
    "ENV_VAR",
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
    "read_audio",
    "register_dataset",
    "resolve_data_dir",
    "stratified_test_mask",
    "subset_indices",
]
