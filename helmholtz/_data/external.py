"""Data sets in other libraries' formats: Hugging Face ``datasets`` (``hf:``) and WebDataset tar shards (``wds:``).

``hf:NAME_OR_PATH``
    Read with the ``datasets`` package (``pip install 'helmholtz-ml[hf]'``):
    a folder written by ``save_to_disk`` (``load_from_disk``), a folder of
    parquet files named by split (``train-*.parquet``, ``test-*.parquet`` or
    ``validation-*.parquet``, as the hub lays them out, also under ``data/``)
    or one ``.parquet`` file (the train split), or else a hub name read from
    the local cache (``load_dataset(NAME)``; it downloads only if the hub is
    reachable and the cache lacks it). The image column is the one of
    feature type ``Image`` (else one named ``image`` or ``img``), the label
    column the ``ClassLabel`` one (else ``label``, ``labels``, ``fine_label``);
    name them with ``hf:PATH?image=COL&label=COL``. Images are kept encoded
    and decoded on access by :mod:`helmholtz._data.decode`'s rules.
``wds:SHARDS``
    WebDataset tar shards (``pip install 'helmholtz-ml[wds]'``): a folder
    holding ``train-*.tar`` and ``test-*.tar`` (or ``val-*.tar``), or a brace
    pattern with ``{split}`` (``wds:/data/in1k-{split}-{000000..000146}.tar``)
    expanded by the ``webdataset`` package. Samples are grouped by key as
    WebDataset groups them (``webdataset.tariterators.base_plus_ext``); the
    image is the ``jpg``/``jpeg``/``png``/``webp``/``ppm`` member, the label the
    integer text of ``cls`` (or ``label``). Class names come from a
    ``classes.txt`` beside the shards (one per line), else ``"0"`` ...
    The shards are indexed once (their tar headers and labels are read,
    not their images), so a split has a length and random access.
"""

from __future__ import annotations

import glob
import hashlib
import os
import tarfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from .._extras import require
from ..errors import DataError
from .decode import check_fit, check_size, decode_image
from .readers import Reader, ReaderDataset, reader_options

__all__ = ["load_hf", "load_wds", "HFReader", "WdsReader"]

_IMAGE_KEYS = ("jpg", "jpeg", "png", "webp", "ppm", "bmp")
_LABEL_KEYS = ("cls", "label", "cls.txt")


class _EncodedReader(Reader):
    """A reader of encoded images: :meth:`encoded` yields their bytes; reads decode them."""

    size: tuple[int, int] | None
    fit: str
    skip_bad: bool
    mode = "RGB"
    exact = False

    def encoded(self, indices: np.ndarray) -> Iterator[tuple[bytes, str]]:
        raise NotImplementedError

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        return (*self.size, 3) if self.size is not None else None

    def _read(self, indices: np.ndarray) -> np.ndarray | list[np.ndarray]:
        images = []
        for blob, where in self.encoded(indices):
            try:
                images.append(decode_image(blob, size=self.size, fit=self.fit, mode="RGB", where=where))
            except DataError:
                if not self.skip_bad:
                    raise
                images.append(None)
        if self.size is not None:
            out = np.zeros((len(images), *self.size, 3), np.uint8)
            for k, im in enumerate(images):
                if im is not None:
                    out[k] = im
            return out
        return [im if im is not None else np.zeros((1, 1, 3), np.uint8) for im in images]


# ----------------------------------------------------------------------------- Hugging Face datasets
class HFReader(_EncodedReader):
    """One split of a Hugging Face ``datasets.Dataset`` with an image and a label column."""

    def __init__(self, table: Any, image: str, label: str, *, name: str, split: str, classes: Sequence[str], source: str,
                 size=None, fit="crop", skip_bad=False) -> None:
        datasets = require("datasets", extra="hf", purpose="reading hf: data sets")
        self.table = table.cast_column(image, datasets.Image(decode=False))
        self.image_column = image
        self.name, self.split, self.classes, self.source = name, split, tuple(classes), source
        self.size, self.fit, self.skip_bad = size, fit, skip_bad
        self.labels = _hf_labels(table, label, f"{name} {split}")
        self._id = f"{source}|{split}|{getattr(table, '_fingerprint', '')}|{len(table)}"

    def encoded(self, indices: np.ndarray) -> Iterator[tuple[bytes, str]]:
        rows = self.table.select(indices.tolist())[self.image_column]
        for i, cell in zip(indices, rows):
            where = f"{self.name} {self.split}[{int(i)}]"
            blob = cell.get("bytes") if isinstance(cell, dict) else None
            if blob is None and isinstance(cell, dict) and cell.get("path"):
                try:
                    blob = Path(cell["path"]).read_bytes()
                except OSError as exc:
                    raise DataError(f"{where}: its image file {cell['path']!r} cannot be read ({exc})") from exc
            if blob is None:
                raise DataError(f"{where}: the image cell holds neither bytes nor a path")
            yield blob, where

    def _identity(self) -> str:
        return self._id


def _hf_labels(table: Any, label: str, where: str) -> np.ndarray:
    try:
        y = np.asarray(table.data.column(label).to_numpy(zero_copy_only=False))
    except Exception:  # noqa: BLE001 - any arrow type: fall back to Python values
        y = np.asarray(table[label])
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: label column {label!r} holds {y.dtype}; expected integer class indices")
    if y.size and y.min() < 0:
        raise DataError(f"{where}: label column {label!r} holds {int(y.min())}; expected labels >= 0 (unlabelled rows are not used)")
    return y.astype(np.int64)


def _hf_columns(table: Any, image: str | None, label: str | None, where: str) -> tuple[str, str, list[str] | None]:
    datasets = require("datasets", extra="hf", purpose="reading hf: data sets")
    feats = table.features
    if image is None:
        typed = [k for k, f in feats.items() if isinstance(f, datasets.Image)]
        named = [k for k in ("image", "img") if k in feats]
        image = (typed or named or [None])[0]
    if image is None or image not in feats:
        raise DataError(f"{where}: no image column ({'none of type Image or named image/img' if image is None else repr(image) + ' is not a column'}); "
                        f"columns: {', '.join(feats)} (name one: hf:PATH?image=COL)")
    if label is None:
        typed = [k for k, f in feats.items() if isinstance(f, datasets.ClassLabel)]
        named = [k for k in ("label", "labels", "fine_label") if k in feats]
        label = (typed or named or [None])[0]
    if label is None or label not in feats:
        raise DataError(f"{where}: no label column ({'none of type ClassLabel or named label' if label is None else repr(label) + ' is not a column'}); "
                        f"columns: {', '.join(feats)} (name one: hf:PATH?label=COL)")
    names = feats[label].names if isinstance(feats[label], datasets.ClassLabel) else None
    return image, label, names


def _hf_splits(spec: str, data_dir: Any) -> tuple[dict, str]:
    datasets = require("datasets", extra="hf", purpose="reading hf: data sets")
    path = Path(spec).expanduser()
    if not path.exists() and data_dir is not None and (Path(data_dir) / spec).exists():
        path = Path(data_dir) / spec
    try:
        if path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "state.json").is_file()):
            loaded = datasets.load_from_disk(str(path))
            return (dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}), str(path)
        if path.is_file() and path.suffix == ".parquet":
            return {"train": datasets.Dataset.from_parquet(str(path))}, str(path)
        if path.is_dir():
            files: dict[str, list[str]] = {}
            for f in sorted(glob.glob(str(path / "**" / "*.parquet"), recursive=True)):
                stem = Path(f).name.split("-")[0].split(".")[0]
                files.setdefault(stem, []).append(f)
            if files:
                return {k: datasets.Dataset.from_parquet(v) for k, v in files.items()}, str(path)
            raise DataError(f"hf:{spec}: {str(path)!r} holds neither a saved data set (dataset_dict.json) nor parquet files")
        return dict(datasets.load_dataset(spec)), spec
    except DataError:
        raise
    except (FileNotFoundError, ValueError, OSError, ConnectionError) as exc:
        raise DataError(f"hf:{spec}: not a saved data set, parquet files or a data set in the hub's cache ({type(exc).__name__}: {exc})") from exc


def load_hf(spec: str, data_dir: Any = None, *, image: str | None = None, label: str | None = None, size: Any = None, fit: str = "crop",
            skip_bad: Any = False) -> ReaderDataset:
    """``hf:NAME_OR_PATH`` as train and test readers (see the module docstring).

    Raises
    ------
    MissingExtra
        Without the ``datasets`` package.
    DataError
        No train or no test split (``validation`` or ``val`` stands for test),
        no image or label column, non-integer or negative labels.
    """
    opts = reader_options(size, fit, skip_bad, False)
    splits, source = _hf_splits(spec, data_dir)
    name = Path(spec).name or spec
    test_key = next((k for k in ("test", "validation", "val", "valid") if k in splits), None)
    if "train" not in splits or test_key is None:
        raise DataError(f"hf:{spec}: needs a train and a test (or validation) split; it has {', '.join(splits) or 'none'}")
    image, label, names = _hf_columns(splits["train"], image, label, f"hf:{spec}")
    readers = {}
    for split, key in (("train", "train"), ("test", test_key)):
        readers[split] = HFReader(splits[key], image, label, name=name, split=split, classes=(), source=source,
                                  size=opts["size"], fit=opts["fit"], skip_bad=opts["skip_bad"])
    names = _set_classes(readers, names, f"hf:{spec}")
    return ReaderDataset(readers["train"], readers["test"], name=name, classes=names, source=source)


def _set_classes(readers: dict, names: list[str] | None, where: str) -> list[str]:
    """Give every split ``names`` (default ``"0"`` .. the largest label), refusing a label outside them."""
    if names is None:
        top = max(int(r.labels.max(initial=-1)) for r in readers.values())
        names = [str(k) for k in range(top + 1)]
    for r in readers.values():
        r.classes = tuple(names)
        if r.labels.size and r.labels.max() >= len(names):
            raise DataError(f"{where} {r.split}: label {int(r.labels.max())} is outside the {len(names)} classes")
    return names


# ----------------------------------------------------------------------------- WebDataset shards
class WdsReader(_EncodedReader):
    """One split of WebDataset tar shards, indexed once (image members' offsets and the labels)."""

    def __init__(self, shards: list[str], *, name: str, split: str, classes: Sequence[str] | None, source: str, size=None, fit="crop",
                 skip_bad=False) -> None:
        tariterators = require("webdataset.tariterators", extra="wds", purpose="reading wds: shards")
        self.shards = shards
        self.name, self.split, self.source = name, split, source
        self.size, self.fit, self.skip_bad = size, fit, skip_bad
        entries: list[tuple[int, int, int]] = []  # (shard, data offset, size)
        labels: list[int] = []
        for s, shard in enumerate(shards):
            samples: dict[str, dict] = {}
            order: list[str] = []
            try:
                with tarfile.open(shard, "r:") as tar:
                    for member in tar:
                        if not member.isfile():
                            continue
                        prefix, suffix = tariterators.base_plus_ext(member.name)
                        if prefix is None or suffix is None:
                            continue
                        sample = samples.setdefault(prefix, {})
                        if prefix not in order or order[-1] != prefix:
                            if prefix in order:
                                raise DataError(f"{name}: key {prefix!r} appears twice, apart, in {shard!r}; WebDataset keeps a sample's files together")
                            order.append(prefix)
                        ext = suffix.lower()
                        if ext in _IMAGE_KEYS:
                            sample["image"] = (member.offset_data, member.size)
                        elif ext in _LABEL_KEYS:
                            f = tar.extractfile(member)
                            sample["label"] = f.read(64).decode("utf-8", "replace").strip() if f is not None else ""
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise DataError(f"{name}: {shard!r} is not a readable tar shard ({type(exc).__name__}: {exc})") from exc
            for key in order:
                sample = samples[key]
                if "image" not in sample or "label" not in sample:
                    raise DataError(f"{name}: sample {key!r} in {shard!r} lacks an image ({'/'.join(_IMAGE_KEYS)}) or a label (cls)")
                text = sample["label"]
                if not text.lstrip("-").isdigit() or int(text) < 0:
                    raise DataError(f"{name}: sample {key!r} in {shard!r} has label {text!r}; expected a whole number >= 0")
                entries.append((s, *sample["image"]))
                labels.append(int(text))
        self._entries = np.array(entries, dtype=np.int64).reshape(-1, 3)
        self.labels = np.array(labels, dtype=np.int64)
        self.classes = tuple(classes) if classes else ()

    def encoded(self, indices: np.ndarray) -> Iterator[tuple[bytes, str]]:
        handles: dict[int, Any] = {}
        try:
            for i in indices:
                s, offset, size = (int(v) for v in self._entries[int(i)])
                if s not in handles:
                    handles[s] = open(self.shards[s], "rb")
                f = handles[s]
                f.seek(offset)
                yield f.read(size), f"{self.name}: sample {int(i)} of {self.shards[s]!r}"
        finally:
            for f in handles.values():
                f.close()

    def _identity(self) -> str:
        h = hashlib.sha256()
        for shard in self.shards:
            st = os.stat(shard)
            h.update(f"{shard}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()


def _wds_shards(spec: str, data_dir: Any) -> dict[str, list[str]]:
    shardlists = require("webdataset.shardlists", extra="wds", purpose="reading wds: shards")
    path = Path(spec).expanduser()
    if not path.exists() and "{" not in spec and data_dir is not None and (Path(data_dir) / spec).exists():
        path = Path(data_dir) / spec
    out: dict[str, list[str]] = {}
    if path.is_dir():
        for split, prefixes in (("train", ("train",)), ("test", ("test", "val", "validation"))):
            for prefix in prefixes:
                found = sorted(glob.glob(str(path / f"{prefix}*.tar")))
                if found:
                    out[split] = found
                    break
    elif "{split}" in spec:
        for split, names in (("train", ("train",)), ("test", ("test", "val", "validation"))):
            for word in names:
                urls = shardlists.expand_urls(spec.replace("{split}", word))
                present = [u for u in urls if Path(u).is_file()]
                if present and len(present) < len(urls):
                    raise DataError(f"wds:{spec}: shard {next(u for u in urls if not Path(u).is_file())!r} of the {split} split is missing")
                if present:
                    out[split] = list(urls)
                    break
    else:
        raise DataError(f"wds:{spec}: give a folder holding train-*.tar and test-*.tar, or a shard pattern with {{split}} "
                        "(e.g. wds:/data/shards/{split}-{000000..000009}.tar)")
    missing = [s for s in ("train", "test") if s not in out]
    if missing:
        raise DataError(f"wds:{spec}: no {' or '.join(missing)} shards found (test shards may be named test-* or val-*)")
    return out


def load_wds(spec: str, data_dir: Any = None, *, size: Any = None, fit: str = "crop", skip_bad: Any = False) -> ReaderDataset:
    """``wds:SHARDS`` as train and test readers (see the module docstring)."""
    opts = reader_options(size, fit, skip_bad, False)
    shards = _wds_shards(spec, data_dir)
    first = Path(shards["train"][0]).parent
    classes_file = first / "classes.txt"
    classes = [c.strip() for c in classes_file.read_text().splitlines() if c.strip()] if classes_file.is_file() else None
    name = Path(spec).name if Path(spec).is_dir() else first.name
    readers = {split: WdsReader(files, name=name, split=split, classes=classes, source=spec, size=opts["size"], fit=opts["fit"],
                                skip_bad=opts["skip_bad"]) for split, files in shards.items()}
    classes = _set_classes(readers, classes, f"wds:{spec}")
    return ReaderDataset(readers["train"], readers["test"], name=name, classes=classes, source=spec)
