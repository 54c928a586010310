"""``helmholtz.data.open``: any image data set's split as a reader, by name or by where it is."""

from __future__ import annotations

import os
from typing import Any, Callable

from ..errors import DataError
from .readers import Reader, check_split
from .registry import get_spec

__all__ = ["open_split", "open_dataset"]


def open_dataset(name_or_path: str | os.PathLike, data_dir: Any = None, *, size: Any = None, fit: str | None = None, skip_bad: bool = False,
                 download: bool = False, **options: Any) -> Any:
    """The data set ``name_or_path`` (see :func:`helmholtz.data.get_spec`): one with ``.reader(split)``.

    In-memory sets come back as :class:`helmholtz.data.Dataset`; photo sets and
    ``hf:``/``wds:`` sources as readers of their files; prepared sets as
    :class:`helmholtz.data.PreparedDataset`.

    Raises
    ------
    ValueError
        ``size`` for a data set of one fixed size (prepare it to resize it),
        an unknown option.
    """
    name = os.fspath(name_or_path) if isinstance(name_or_path, os.PathLike) else name_or_path
    spec = get_spec(name)
    if spec.kind != "image":
        raise ValueError(f"dataset {name!r} is of kind {spec.kind!r}; readers serve image data sets")
    kwargs = dict(options)
    if size is not None or fit is not None:
        if not spec.resizable:
            raise ValueError(f"size/fit apply to data sets of mixed sizes (image folders, imagenet, places365, hf:, wds:); {name} has one size: "
                             "bring it to another with helmholtz prepare --size HxW")
        if size is not None:
            kwargs["size"] = size
        kwargs["fit"] = fit or "crop"
    if skip_bad:
        if not (spec.streams or spec.opener is not None):
            raise ValueError(f"skip_bad applies to data sets read file by file; {name} is read whole")
        kwargs["skip_bad"] = True
    if download:
        if not spec.downloadable:
            raise ValueError(f"download works for data sets with a checksummed download; not {name}")
        kwargs["download"] = True
    ds = (spec.opener or spec.loader)(data_dir, **kwargs)
    if not hasattr(ds, "reader"):
        raise DataError(f"dataset {name!r}: its loader returned {type(ds).__name__}, which has no readers")
    return ds


def open_split(name_or_path: str | os.PathLike, split: str = "train", *, data_dir: Any = None, size: Any = None, fit: str | None = None,
               skip_bad: bool = False, download: bool = False, transform: Callable | None = None, target_transform: Callable | None = None,
               **options: Any) -> Reader:
    """One split of an image data set as a :class:`~helmholtz._data.readers.Reader` (public as :func:`helmholtz.data.open`)."""
    split = check_split(split)
    ds = open_dataset(name_or_path, data_dir, size=size, fit=fit, skip_bad=skip_bad, download=download, **options)
    return ds.reader(split).with_transform(transform, target_transform)
