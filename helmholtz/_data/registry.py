"""The data sets known by name, for ``helmholtz sweep --dataset`` and :func:`load_dataset`.

Names map to ``"module:attr"`` strings of :class:`DatasetSpec` objects, from
the entry points of the group ``helmholtz.datasets`` (helmholtz declares
its own there, image and audio alike, as a third-party package would) or from
:func:`register_dataset` at run time. Nothing is imported until a data set is
asked for by name.

Besides registered names, :func:`get_spec` resolves sources named by where
they are (each a data set of its own, named by that string):

* ``prepared:DIR``, or a ``DIR`` holding a prepared set's ``manifest.json``;
* a path to an ``.npz`` file (``x_train, y_train, x_test, y_test``);
* ``hf:NAME_OR_PATH`` (Hugging Face ``datasets``) and ``wds:SHARDS`` (WebDataset);
* any other existing folder: an image folder (the ``folder`` data set there).

A name may carry options after ``?``, as in a URL: ``cifar100?labels=coarse``,
``svhn?extra=1``, ``hf:/data/set?image=img&label=fine_label``; they are
passed to the loader as keyword arguments (strings), which checks them.
"""

from __future__ import annotations

import functools
import os
import urllib.parse
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from .._plugins import Registry

__all__ = ["DatasetSpec", "DATASETS", "register_dataset", "get_spec", "dataset_names", "load_dataset", "PREFIXES"]

#: The prefixes of sources named by where they are.
PREFIXES = ("prepared:", "hf:", "wds:")


@dataclass(frozen=True)
class DatasetSpec:
    """A data set helmholtz can load by name, and how its trials compress it.

    Attributes
    ----------
    name : str
        The name used on the command line.
    loader : callable
        ``loader(data_dir, **kwargs)`` returns the data set (a
        :class:`helmholtz.data.Dataset` for images,
        :class:`helmholtz.data.AudioDataset` for audio).
    kind : str
        Selects the trial runner (``"image"``: JPEG at a quality; ``"audio"``:
        MP3 at a bitrate); runners are registered under the group
        ``helmholtz.trial_runners``.
    level : str
        The compression knob: ``"quality"`` or ``"bitrate"``.
    description : str
    downloadable : bool
        Whether ``loader(data_dir, download=True)`` can fetch it.
    resizable : bool
        Whether ``loader(data_dir, size=(H, W), fit=...)`` brings images of
        mixed sizes to one size (``helmholtz sweep --image-size HxW``).
    extra : dict
    streams : bool
        Whether the loader returns readers that read images on access
        (files, batches, a prepared set) rather than a data set held in memory.
    opener : callable, optional
        ``opener(data_dir, **kwargs)``: the same data set as readers of its
        files, for :func:`helmholtz.data.open`, ``helmholtz info`` and
        ``helmholtz prepare`` (default: ``loader``).
    """

    name: str
    loader: Callable[..., Any]
    kind: str = "image"
    level: str = "quality"
    description: str = ""
    downloadable: bool = False
    resizable: bool = False
    extra: dict = field(default_factory=dict)
    streams: bool = False
    opener: Callable[..., Any] | None = None


#: name -> "module:attr" of a DatasetSpec.
DATASETS = Registry("helmholtz.datasets", "dataset")


def register_dataset(name: str, target: str, *, replace: bool = False) -> None:
    """Make the :class:`DatasetSpec` at ``target`` (``"module:attr"``) known as ``name``."""
    DATASETS.register(name, target, replace=replace)


def dataset_names() -> list[str]:
    """Every known data set name (nothing is imported)."""
    return DATASETS.names()


def get_spec(name: Any) -> DatasetSpec:
    """The :class:`DatasetSpec` called ``name``.

    Raises
    ------
    TypeError
        If ``name`` is not a string.
    ValueError
        If no data set has that name (the message lists the known ones).
    """
    if not isinstance(name, str) or isinstance(name, bool):
        raise TypeError(f"dataset must be a name string; got {type(name).__name__}")
    base, _, query = name.partition("?")
    options: dict[str, str] = {}
    if query:
        try:
            pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise ValueError(f"dataset {name!r}: options after '?' must be key=value pairs joined by '&'") from None
        for k, v in pairs:
            if k in options:
                raise ValueError(f"dataset {name!r}: option {k!r} is given twice")
            options[k] = v
    spec = _located_spec(base)
    if spec is None:
        if base not in DATASETS and (base.endswith(("/", os.sep)) or os.sep in base):
            raise ValueError(f"dataset {base!r} is neither a known data set name nor an existing folder or .npz file")
        spec = DATASETS.load(base)
        if not isinstance(spec, DatasetSpec):
            raise TypeError(f"dataset {base!r} is registered as {DATASETS.target(base)!r}, which is not a DatasetSpec")
    if options:
        spec = replace(spec, name=name, loader=functools.partial(_with_options, spec.loader, options),
                       opener=None if spec.opener is None else functools.partial(_with_options, spec.opener, options))
    return spec


def _with_options(loader: Callable[..., Any], options: dict, data_dir: Any = None, **kwargs: Any) -> Any:
    clash = sorted(set(options) & set(kwargs))
    if clash:
        raise ValueError(f"option(s) {', '.join(clash)} given both in the data set's name and as arguments")
    try:
        return loader(data_dir, **options, **kwargs)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise ValueError(f"unknown data set option in {', '.join(f'{k}={v}' for k, v in options.items())} ({exc})") from None
        raise


def _bind(target: str, path: str) -> Callable[..., Any]:
    module, attr = target.split(":")

    def loader(data_dir: Any = None, **kwargs: Any) -> Any:
        import importlib

        return getattr(importlib.import_module(module), attr)(path, data_dir, **kwargs)

    return loader


def _located_spec(base: str) -> DatasetSpec | None:
    """The spec of a source named by where it is (see the module docstring), or None for a plain name."""
    kind = None
    if base.startswith("prepared:"):
        kind, where = "prepared", base[len("prepared:"):]
    elif base.startswith("hf:"):
        kind, where = "hf", base[3:]
    elif base.startswith("wds:"):
        kind, where = "wds", base[4:]
    elif base.lower().endswith(".npz"):
        kind, where = "npz", base
    elif base not in DATASETS and base and Path(base).expanduser().is_dir():
        kind, where = ("prepared" if (Path(base).expanduser() / "manifest.json").is_file() else "folder"), base
    if kind is None:
        return None
    if not where:
        raise ValueError(f"dataset {base!r} names no path after its prefix")
    targets = {
        "prepared": ("helmholtz._data.prepared:load_prepared", "a prepared data set (helmholtz prepare)", False, True),
        "hf": ("helmholtz._data.external:load_hf", "a Hugging Face datasets data set", True, True),
        "wds": ("helmholtz._data.external:load_wds", "WebDataset tar shards", True, True),
        "npz": ("helmholtz._data.sources:load_npz_file", "an .npz file of x_train, y_train, x_test, y_test", False, False),
        "folder": ("helmholtz._data.images:load_folder_at", "a folder of images, one subfolder per class", True, False),
    }
    target, description, resizable, streams = targets[kind]
    opener = _bind("helmholtz._data.images:open_folder_at", where) if kind == "folder" else None
    return DatasetSpec(base, _bind(target, where), "image", "quality", description, resizable=resizable, streams=streams,
                       extra={"kind": kind, "path": where}, opener=opener)


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, **kwargs: Any) -> Any:
    """Load the data set called ``name`` (see :func:`get_spec`) from ``data_dir`` (default ``$HELMHOLTZ_DATA``)."""
    return get_spec(name).loader(data_dir, **kwargs)
