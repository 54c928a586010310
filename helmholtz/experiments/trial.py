"""One trial from data to record: load, compress, train, fingerprint, and keep the weights.

These functions are shared by every executor (in-process, worker processes,
Ray tasks); none of them touches the results database.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from ..data import get_spec, parse_size, resolve_data_dir
from ..errors import DataError
from .fingerprint import array_sha256, code_fingerprint, device_name, recipe_json
from .runners import Prepared, TrainOptions, runner_for
from .spec import TrialSpec
from .store import COLUMNS, write_new_file

__all__ = ["load_trial_data", "parse_image_size", "parse_image_size_fit", "source_sha256", "check_source", "run_trial", "save_weights", "weights_payload", "load_weights", "MODELS_DIR", "DataCache"]

#: Folder of the output folder where each trial's final weights are kept.
MODELS_DIR = "models"


#: How ``--image-size`` reaches its size (``--fit``); ``crop`` is the default and is not written into ``image_size``.
FITS = ("crop", "pad", "stretch")


def parse_image_size_fit(text: Any) -> tuple[tuple[int, int], str]:
    """``"64x48"`` -> ``((64, 48), "crop")``; ``"64x48:pad"`` -> ``((64, 48), "pad")``.

    A trial's ``image_size`` holds the size and, unless it is the default
    centre crop, the fit after a colon, so that the fit is part of the
    trial's key.

    Raises
    ------
    TypeError
        Not a string.
    ValueError
        Not ``HxW[:fit]`` with H, W >= 1, a fit other than crop, pad or
        stretch, or more pixels per image than ``HELMHOLTZ_MAX_IMAGE_PIXELS``
        (so a huge size is refused before anything is allocated).
    """
    if not isinstance(text, str):
        raise TypeError(f"image_size must be a string 'HxW' such as '32x32'; got {text!r}")
    size, _, fit = text.partition(":")
    fit = fit or "crop"
    if fit not in FITS:
        raise ValueError(f"image_size {text!r}: the fit after ':' must be one of {', '.join(FITS)}")
    return parse_size(size, "image_size"), fit


def parse_image_size(text: Any) -> tuple[int, int]:
    """``"64x48"`` -> ``(64, 48)``: height by width, each >= 1 (see :func:`parse_image_size_fit`)."""
    return parse_image_size_fit(text)[0]


def _resizable_names() -> str:
    from ..data import dataset_names

    return ", ".join(n for n in dataset_names() if get_spec(n).resizable)


def load_trial_data(dataset: str, data_dir: Any, train_subset: int | None, test_subset: int | None, download: bool = False,
                    image_size: str | None = None) -> Any:
    """The data set (subset) the trials of one group train on.

    Raises
    ------
    DataError
        If the files are missing or unusable, or a subset is larger than its split.
    ValueError
        If ``image_size`` is given for a data set that cannot be resized.
    """
    spec = get_spec(dataset)
    located = "path" in spec.extra  # a source named by where it is: data_dir only resolves a relative path
    root = data_dir if (download and data_dir is not None) or (located and not data_dir) else str(resolve_data_dir(data_dir))
    options: dict[str, Any] = {}
    if image_size is not None:
        if not spec.resizable:
            raise ValueError(f"--image-size applies to image folders and photo data sets ({_resizable_names()}, hf:, wds:); {dataset} has one size already")
        options["size"], options["fit"] = parse_image_size_fit(image_size)
    full = spec.loader(root, download=True) if download and spec.downloadable else spec.loader(root, **options)
    if train_subset is None and test_subset is None:
        return full
    return full.subset(train_subset, test_subset)


def source_sha256(ds: Any) -> str:
    """SHA-256 of a loaded data set (subset) before any compression: its images or clips, labels and split.

    A prepared set's comes from its manifest (computed once, when it was
    prepared) and a set read from files from their names, sizes and times:
    neither is re-hashed from the pixels.
    """
    fingerprint = getattr(ds, "fingerprint", None)
    if isinstance(fingerprint, str):
        return fingerprint
    if hasattr(ds, "x_train"):
        return array_sha256([ds.x_train, ds.y_train, ds.x_test, ds.y_test])
    return array_sha256([list(ds.waveforms), ds.labels, ds.is_test])


def check_source(where: Any, group: tuple, sha: str, stored: set[str]) -> None:
    """Refuse data that differs from what the finished trials of its group were trained on.

    Raises
    ------
    DataError
        When ``stored`` (the source fingerprints already in the database at
        ``where``) is not empty and does not hold ``sha``.
    """
    if stored and sha not in stored:
        dataset, tr, te = group[:3]
        raise DataError(
            f"the data of {dataset!r} (train_subset={tr}, test_subset={te}) is not what the finished trials in {where} were trained on "
            f"(source SHA-256 now {sha[:16]}..., stored {', '.join(s[:16] + '...' for s in sorted(stored))}). Resuming would mix two "
            "data sets under one name: restore the original data, or start a new --out"
        )


class DataCache:
    """The last data set and the last prepared level of a worker, so seeds and models share them."""

    def __init__(self) -> None:
        self.group: tuple | None = None
        self.dataset: Any = None
        self.source_sha256: str | None = None
        self.level_key: tuple | None = None
        self.prepared: Prepared | None = None

    def data(self, spec: TrialSpec, data_dir: Any, download: bool = False) -> tuple[Any, str]:
        """The data set of ``spec``'s group and its source fingerprint (loaded once per group)."""
        group = spec.data_group()
        if group != self.group:
            self.dataset = self.prepared = self.level_key = None
            self.dataset = load_trial_data(spec.dataset, data_dir, spec.train_subset, spec.test_subset, download, spec.image_size)
            self.source_sha256 = source_sha256(self.dataset)
            self.group = group
        return self.dataset, self.source_sha256

    def prepare(self, spec: TrialSpec, options: TrainOptions) -> Prepared:
        """The data of ``spec`` compressed at its level (once per group and level)."""
        key = (spec.data_group(), spec.level, options.device)
        if key != self.level_key:
            self.prepared = None  # free the previous level's device memory first
            self.prepared = runner_for(spec.dataset).prepare(self.dataset, spec.level, options)
            self.level_key = key
        assert self.prepared is not None
        return self.prepared


def run_trial(spec: TrialSpec, dataset: Any, options: TrainOptions, *, prepared: Prepared | None = None, source: str | None = None) -> dict:
    """Compress (unless ``prepared`` is given), train and evaluate one trial; return its record.

    The record has the columns of :data:`helmholtz.experiments.store.COLUMNS`
    and, under ``"state"``, the final weights (taken out by :func:`weights_payload`
    or :func:`save_weights` before storing). Nothing is written anywhere.
    """
    runner = runner_for(spec.dataset)
    t0 = time.perf_counter()
    if prepared is None:
        runner.check_data(dataset, [spec.level])
        prepared = runner.prepare(dataset, spec.level, options)
    result = runner.train(spec, dataset, prepared, options)
    record: dict[str, Any] = {k: v for k, v in spec.to_dict().items()}
    record["key"] = spec.key()
    record.update({k: v for k, v in prepared.rate.items() if k in COLUMNS})
    extra = dict(result.pop("extra", None) or {})
    for k, v in result.items():
        if k in COLUMNS or k == "state":
            record[k] = v
        else:
            extra[k] = v
    record.update(code_fingerprint())
    record.update(
        source_sha256=source if source is not None else source_sha256(dataset),
        data_sha256=prepared.data_sha256,
        recipe_json=recipe_json({**runner.describe_recipe(spec, dataset), "compile": bool(options.compile)}),
        device=device_name(options.device),
        host=socket.gethostname(),
        compress_time_s=prepared.compress_time_s,
        wall_time_s=time.perf_counter() - t0,
        extra=extra or None,
    )
    return record


def _weights_name(key: str, token: str | None = None) -> str:
    """``<sha-256 of the key, 24 hex>-<token>.pt``: one trial's prefix, and a name no other writer uses."""
    return f"{hashlib.sha256(key.encode('utf-8', 'surrogateescape')).hexdigest()[:24]}-{token or uuid.uuid4().hex[:12]}.pt"


def weights_payload(record: dict) -> dict[str, bytes]:
    """Take ``record["state"]`` out as the bytes of a weights file under a new name; returns ``{"weights": bytes}``.

    Sets ``record["weights"]`` to ``models/<key hash>-<token>.pt`` (a name no
    other writer uses, so a late finisher never replaces a stored trial's
    file) and ``record["weights_sha256"]``. Nothing is written: pass the
    result as ``files`` to :meth:`ResultStore.add_or_keep`, which writes the
    file and the row together, or use :func:`save_weights`. Returns ``{}``
    when the record holds no weights.
    """
    import torch

    state = record.pop("state", None)
    if state is None:
        return {}
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    record["weights"] = f"{MODELS_DIR}/{_weights_name(record['key'])}"
    record["weights_sha256"] = hashlib.sha256(data).hexdigest()
    return {"weights": data}


def save_weights(out: str | os.PathLike, record: dict) -> dict:
    """Move ``record["state"]`` into a new file ``OUT/models/<key hash>-<token>.pt``; set ``weights`` and ``weights_sha256``.

    The file is written under a name of its own, never over an existing
    file, and no temporary file is left behind if the write fails. It is read
    back by :func:`load_weights` with ``weights_only=True``, which never runs
    code from the file. (The sweep's workers write weights through
    :meth:`ResultStore.add_or_keep` instead, which also keeps them when the
    output folder cannot be written.)

    Raises
    ------
    OSError
        If the file cannot be written (the record then has no weights columns set).
    """
    files = weights_payload(record)
    if not files:
        return record
    try:
        write_new_file(Path(out) / record["weights"], files["weights"])
    except BaseException:
        record["weights"] = record["weights_sha256"] = None
        raise
    return record


def load_weights(out: str | os.PathLike, record: dict) -> dict:
    """The final weights of a stored trial, checked against the SHA-256 in its record.

    Raises
    ------
    DataError
        If the file is missing, changed since it was written, or not a weights file.
    """
    import torch

    if not record.get("weights"):
        raise DataError(f"trial {record.get('key')!r} has no stored weights (it was trained by an older helmholtz)")
    path = Path(out) / record["weights"]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"the weights of trial {record.get('key')!r} are missing: {path} ({exc})") from exc
    if record.get("weights_sha256") and hashlib.sha256(data).hexdigest() != record["weights_sha256"]:
        raise DataError(f"{path} changed since trial {record.get('key')!r} wrote it (SHA-256 differs); retrain it in a new --out")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling error means a foreign file
        raise DataError(f"{path} is not a helmholtz weights file ({type(exc).__name__}: {exc})") from exc
