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
    """One split of an image data set as a reader (``helmholtz.data.open``).

    Parameters
    ----------
    name_or_path : str or path
        A data set name (``cifar10``, ``imagenet``, ...; options after ``?``
        as in ``cifar100?labels=coarse``), a path to an ``.npz``, an image
        folder, ``hf:NAME_OR_PATH``, ``wds:SHARDS``, or ``prepared:DIR``.
    split : {"train", "test"}
        ``"val"`` and ``"validation"`` mean ``"test"``.
    data_dir : path, optional
        Where named data sets are found (default ``$HELMHOLTZ_DATA``).
    size : (int, int), optional
        Bring every image to ``(H, W)`` (sources of mixed sizes only).
    fit : {"crop", "pad", "stretch"}, optional
        How ``size`` is reached (default ``"crop"``).
    skip_bad : bool
        Give a black image for a file that cannot be decoded and list it in
        the reader's ``bad`` instead of raising.
    download : bool
        Fetch a missing data set that has a checksummed download.
    transform, target_transform : callable, optional
        Applied by ``reader[i]`` to the image and the label.
    **options
        Passed to the data set's loader (as the options of a name).

    Returns
    -------
    Reader
        ``len(reader)``, ``reader[i]`` -> ``(image, label)``, ``reader[a:b]``
        -> ``(images, labels)``, ``reader.batches(n)``, ``reader.classes``.

    Raises
    ------
    TypeError, ValueError
        A bad argument, an unknown data set or option.
    DataError
        Missing or unreadable files, naming them.

    Examples
    --------
    >>> from helmholtz import data
    >>> train = data.open("cifar10", "train")  # doctest: +SKIP
    >>> image, label = train[0]                # doctest: +SKIP
    """
    split = check_split(split)
    ds = open_dataset(name_or_path, data_dir, size=size, fit=fit, skip_bad=skip_bad, download=download, **options)
    return ds.reader(split).with_transform(transform, target_transform)
