"""The data sets known by name, for ``helmholtz sweep --dataset`` and :func:`load_dataset`.

Names map to ``"module:attr"`` strings of :class:`DatasetSpec` objects, from
the entry points of the group ``helmholtz.datasets`` (helmholtz declares
its own there, image and audio alike, as a third-party package would) or from
:func:`register_dataset` at run time. Nothing is imported until a data set is
asked for by name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

from .._plugins import Registry

__all__ = ["DatasetSpec", "DATASETS", "register_dataset", "get_spec", "dataset_names", "load_dataset"]


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
        Whether ``loader(data_dir, size=(H, W))`` brings images of mixed sizes
        to one size (``helmholtz sweep --image-size HxW``).
    extra : dict
    """

    name: str
    loader: Callable[..., Any]
    kind: str = "image"
    level: str = "quality"
    description: str = ""
    downloadable: bool = False
    resizable: bool = False
    extra: dict = field(default_factory=dict)


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
    if not isinstance(name, str):
        raise TypeError(f"dataset must be a name string; got {type(name).__name__}")
    spec = DATASETS.load(name)
    if not isinstance(spec, DatasetSpec):
        raise TypeError(f"dataset {name!r} is registered as {DATASETS.target(name)!r}, which is not a DatasetSpec")
    return spec


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, **kwargs: Any) -> Any:
    """Load the data set called ``name`` from ``data_dir`` (default ``$HELMHOLTZ_DATA``)."""
    return get_spec(name).loader(data_dir, **kwargs)
