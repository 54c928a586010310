"""The prepared format: a data set decoded once into memory-mappable uint8 shards, and its reader.

``helmholtz prepare SOURCE --size HxW --out DIR`` (:func:`prepare`) writes::

    DIR/manifest.json            what was prepared from what, with which options; "complete" at the end
    DIR/train/00000.npy          uint8 (n, H, W, C) images of shard 0 (NumPy .npy: np.load(mmap_mode="r"))
    DIR/train/00000.labels.npy   int64 (n,) labels
    DIR/train/00000.json         the shard's count, SHA-256s and skipped files: written last, it marks the shard done
    DIR/test/...                 the same for the test split

Shards hold ``shard_size`` consecutive images of the source (default: about 64 MiB of pixels), in the source's
order (fewer when ``--skip-bad`` left bad files out, and in the last shard).
A shard is written to temporary names and renamed into place, its ``.json``
last, so a killed ``prepare`` leaves only whole shards; run again, it skips
the shards that are done. A DIR holds one preparation: the same command
resumes it, a different source or different options are refused.

:class:`PreparedReader` reads a split by ``pread`` of the rows asked for (no
mapping stays behind, so a pass over a set far larger than memory keeps the
process's memory flat; the page cache is shared by every process reading the
set). :meth:`PreparedReader.memmap` gives a shard as a read-only memory map.
The fingerprint of a prepared set is computed once, when its last shard is
written, from the shards' SHA-256s and the options: it is read from the
manifest, never re-hashed from the pixels.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .._version import __version__
from ..errors import DataError
from .decode import check_fit, check_size, decode_image, decoder, fit_array
from .readers import FileReader, Reader, ReaderDataset

__all__ = ["MANIFEST", "FORMAT", "PreparedReader", "PreparedDataset", "prepare", "is_prepared", "read_manifest", "PrepareResult"]

MANIFEST = "manifest.json"
FORMAT = "helmholtz-prepared"
FORMAT_VERSION = 1
_TARGET_SHARD_BYTES = 64 << 20


# ----------------------------------------------------------------------------- reading
def is_prepared(path: Any) -> bool:
    """Whether ``path`` is a folder holding a prepared set's manifest."""
    try:
        return (Path(path) / MANIFEST).is_file()
    except (TypeError, OSError):
        return False


def read_manifest(root: Path) -> dict:
    """The manifest of the prepared set at ``root``.

    Raises
    ------
    DataError
        Missing, unreadable, not a helmholtz manifest, or of another format version.
    """
    path = Path(root) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{str(root)!r} is not a prepared data set: it has no {MANIFEST} (make one with helmholtz prepare)") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{str(path)!r} is not a readable manifest ({type(exc).__name__}: {exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DataError(f"{str(path)!r} is not a helmholtz prepared-set manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise DataError(f"{str(path)!r} is format version {manifest.get('version')}; this helmholtz reads version {FORMAT_VERSION}")
    return manifest


def read_npy_header(fp: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` of the ``.npy`` stream ``fp``, left at the start of its data."""
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fp)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(fp)
    raise ValueError(f".npy format version {version} is not one of (1, 0), (2, 0)")


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    with open(path, "rb") as f:
        shape, fortran, dtype = read_npy_header(f)
        if fortran:
            raise DataError(f"{str(path)!r} is stored in Fortran order; expected C order")
        return tuple(shape), np.dtype(dtype), f.tell()


class PreparedReader(Reader):
    """One split of a prepared set (see the module docstring).

    Raises
    ------
    DataError
        When the set is not complete (``prepare`` did not finish: run it
        again to resume), or a shard is missing or damaged.
    """

    def __init__(self, root: str | os.PathLike, split: str, manifest: dict | None = None) -> None:
        self.root = Path(root)
        manifest = manifest if manifest is not None else read_manifest(self.root)
        if not manifest.get("complete"):
            raise DataError(f"the prepared set {str(self.root)!r} is not complete; run the same helmholtz prepare command again to finish it")
        splits = manifest["splits"]
        if split not in splits:
            raise DataError(f"the prepared set {str(self.root)!r} has no {split} split (it has {', '.join(splits)})")
        info = splits[split]
        self.manifest = manifest
        self.name, self.split, self.classes, self.source = manifest["name"], split, tuple(manifest["classes"]), str(self.root)
        h, w = manifest["options"]["size"]
        self._shape = (int(h), int(w), int(manifest["channels"]))
        self._shards: list[tuple[Path, int, int]] = []  # (file, data offset, count)
        labels = []
        for k, shard in enumerate(info["shards"]):
            stem = self.root / split / f"{k:05d}"
            images = stem.with_suffix(".npy")
            try:
                shape, dtype, offset = _npy_header(images)
                lab = np.load(str(stem) + ".labels.npy", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise DataError(f"prepared set {str(self.root)!r}: shard {images.name} of {split} is missing or damaged ({exc})") from exc
            if dtype != np.uint8 or shape != (shard["count"], *self._shape) or lab.shape != (shard["count"],):
                raise DataError(f"prepared set {str(self.root)!r}: shard {images.name} of {split} holds {dtype} {shape}; the manifest says {shard['count']} images of {self._shape}")
            if images.stat().st_size != offset + int(np.prod(shape)):
                raise DataError(f"prepared set {str(self.root)!r}: shard {images.name} of {split} is truncated")
            self._shards.append((images, offset, shard["count"]))
            labels.append(lab.astype(np.int64))
        self.labels = np.concatenate(labels) if labels else np.zeros(0, np.int64)
        self._starts = np.cumsum([0] + [c for _, _, c in self._shards])
        self._fingerprint = f"{manifest['fingerprint']}|{split}"

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self._shape

    @property
    def shards(self) -> int:
        return len(self._shards)

    def memmap(self, shard: int) -> np.ndarray:
        """Shard ``shard`` of this split as a read-only uint8 ``(n, H, W, C)`` memory map."""
        path = self._shards[shard][0]
        return np.load(path, mmap_mode="r")

    def _read(self, indices: np.ndarray) -> np.ndarray:
        out = np.empty((indices.size, *self._shape), np.uint8)
        row = int(np.prod(self._shape))
        which = np.searchsorted(self._starts, indices, side="right") - 1
        pos = 0
        for s in np.unique(which):
            path, offset, _ = self._shards[s]
            local = indices[which == s] - self._starts[s]
            with open(path, "rb", buffering=0) as f:
                fd = f.fileno()
                # runs of consecutive rows are read in one call
                breaks = np.flatnonzero(np.diff(local) != 1) + 1
                for run in np.split(local, breaks):
                    n = run.size
                    buf = out[pos : pos + n].reshape(-1)
                    if hasattr(os, "preadv"):
                        got = os.preadv(fd, [memoryview(buf)], offset + int(run[0]) * row)
                    else:  # no preadv (Windows): seek and read into the same rows
                        f.seek(offset + int(run[0]) * row)
                        got = f.readinto(memoryview(buf))
                    if got != buf.size:
                        raise DataError(f"prepared set {str(self.root)!r}: {path.name} is shorter than its header says")
                    pos += n
        return out

    def _identity(self) -> str:
        return self._fingerprint

    def fingerprint(self) -> str:
        return hashlib.sha256(self._fingerprint.encode()).hexdigest()


class PreparedDataset(ReaderDataset):
    """A prepared set's train and test splits, for sweeps (the reader-backed sibling of :class:`helmholtz.data.Dataset`).

    Its ``fingerprint`` is computed from the manifest's: the pixels are never
    hashed again.

    Attributes
    ----------
    train, test : PreparedReader (or subsets of them)
    name, classes, source : as :class:`helmholtz.data.Dataset`
    root : Path
    manifest : dict
    """

    def __init__(self, root: str | os.PathLike, *, train: Reader | None = None, test: Reader | None = None, manifest: dict | None = None) -> None:
        self.root = Path(root)
        self.manifest = manifest if manifest is not None else read_manifest(self.root)
        super().__init__(train if train is not None else PreparedReader(self.root, "train", self.manifest),
                         test if test is not None else PreparedReader(self.root, "test", self.manifest),
                         name=self.manifest["name"], classes=self.manifest["classes"], source=str(self.root))

    def _with(self, train: Reader, test: Reader) -> "PreparedDataset":
        return PreparedDataset(self.root, train=train, test=test, manifest=self.manifest)

    def __repr__(self) -> str:
        return f"<PreparedDataset {self.name} at {str(self.root)!r}: {len(self.train)} train, {len(self.test)} test, {self.train.image_shape}>"


# ----------------------------------------------------------------------------- writing
class PrepareResult(dict):
    """What :func:`prepare` did: ``written`` / ``resumed`` shards, ``images`` per split, ``skipped`` files, ``seconds``."""


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _save_npy_atomic(path: Path, arr: np.ndarray) -> str:
    """Write ``arr`` as ``.npy`` under a temporary name, fsync, rename into place; return the file's SHA-256 (hashed from memory)."""
    arr = np.ascontiguousarray(arr)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.lib.format.write_array(f, arr, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
            size = f.tell()
        h = hashlib.sha256()
        with open(tmp, "rb") as f:
            h.update(f.read(size - arr.nbytes))  # the header, as written
        h.update(arr.reshape(-1).view(np.uint8) if arr.size else b"")  # the data, from memory rather than read back
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return h.hexdigest()


# --- the work of one decoding process
_WORKER: dict = {}


def _init_worker(reader: Reader, size: tuple[int, int], fit: str, mode: str) -> None:
    _WORKER.update(reader=reader, size=size, fit=fit, mode=mode)
    try:  # each worker decodes on one core; a numerical library's own threads would only contend
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    except Exception:  # noqa: BLE001
        pass


def _channels_to(arr: np.ndarray, mode: str) -> np.ndarray:
    if arr.ndim == 2:
        arr = arr[..., None]
    if mode == "RGB" and arr.shape[2] == 1:
        return np.repeat(arr, 3, axis=2)
    if mode == "L" and arr.shape[2] == 3:
        from PIL import Image

        return np.asarray(Image.fromarray(arr).convert("L"))[..., None]
    return arr


def _fitted_images(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode and fit the images at ``indices`` of the worker's reader: (images, ok mask, bad files)."""
    reader, size, fit, mode = _WORKER["reader"], _WORKER["size"], _WORKER["fit"], _WORKER["mode"]
    c = 3 if mode == "RGB" else 1
    out = np.zeros((indices.size, *size, c), np.uint8)
    ok = np.ones(indices.size, bool)
    bad: list[str] = []
    if isinstance(reader, FileReader):
        for k, i in enumerate(indices):
            where = f"{reader.name}: {reader.files[int(i)]!r}"
            try:
                arr = decode_image(reader.files[int(i)], size=size, fit=fit, mode=mode, where=where, exact=reader.exact)
            except DataError:
                if not reader.skip_bad:
                    raise
                ok[k] = False
                bad.append(reader.files[int(i)])
                continue
            out[k] = arr.reshape(*size, c)
        return out, ok, bad
    encoded = getattr(reader, "encoded", None)
    if encoded is not None:  # readers of encoded bytes (hf:, wds:) decode here, in the worker
        for k, (blob, where) in enumerate(encoded(indices)):
            try:
                arr = decode_image(blob, size=size, fit=fit, mode=mode, where=where)
            except DataError:
                if not getattr(reader, "skip_bad", False):
                    raise
                ok[k] = False
                bad.append(where)
                continue
            out[k] = arr.reshape(*size, c)
        return out, ok, bad
    images = reader.read(indices)
    for k, im in enumerate(images):
        out[k] = _channels_to(fit_array(np.asarray(im), size, fit), mode).reshape(*size, c)
    return out, ok, bad


def _progress(total: int, desc: str, show: bool | None) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        tqdm = None
    if tqdm is not None:
        return tqdm(total=total, desc=desc, unit="img", disable=(None if show is None else not show), dynamic_ncols=True, file=sys.stderr, smoothing=0.05)

    class _Plain:  # without tqdm: one line every few seconds
        def __init__(self) -> None:
            self.n, self.t0, self.last = 0, time.perf_counter(), 0.0

        def update(self, k: int) -> None:
            self.n += k
            now = time.perf_counter()
            if show is not False and (now - self.last > 5 or self.n == total):
                rate = self.n / max(now - self.t0, 1e-9)
                eta = (total - self.n) / rate if rate > 0 else float("inf")
                print(f"{desc}: {self.n}/{total} images, {rate:.0f} img/s, ETA {eta:.0f} s", file=sys.stderr, flush=True)
                self.last = now

        def close(self) -> None:
            pass

    return _Plain()


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _check_out(out: Any) -> Path:
    if not isinstance(out, (str, os.PathLike)) or str(out).strip() == "":
        raise ValueError(f"out must be a folder path; got {out!r}")
    path = Path(out).expanduser()
    if path.resolve() == Path(path.resolve().anchor):
        raise ValueError(f"out {str(path)!r} is the root of the file system; give a folder of its own")
    if path.exists() and not path.is_dir():
        raise ValueError(f"out {str(path)!r} exists and is not a folder")
    return path


def prepare(
    source: str,
    readers: dict[str, Reader],
    out: str | os.PathLike,
    *,
    size: tuple[int, int],
    fit: str = "crop",
    mode: str = "RGB",
    name: str | None = None,
    shard_size: int | None = None,
    workers: int | None = None,
    progress: bool | None = None,
    source_fingerprint: str | None = None,
    log: Callable[[str], None] | None = None,
) -> PrepareResult:
    """Decode ``readers`` once into the prepared format at ``out`` (see the module docstring).

    Parameters
    ----------
    source : str
        What was asked for (a data set name, a path, ``hf:...``), recorded in the manifest.
    readers : dict
        ``{"train": Reader, "test": Reader}``: the source's splits.
    out : path
        The folder to write (created); an existing one must hold this very preparation.
    size : (int, int)
        ``(H, W)`` of every prepared image.
    fit : {"crop", "pad", "stretch"}
    mode : {"RGB", "L"}
    name : str, optional
        The prepared set's name (default the source's).
    shard_size : int, optional
        Images per shard (default: about 64 MiB of pixels).
    workers : int, optional
        Decoding processes (default: every core this process may use).
    progress : bool, optional
        A progress bar with rate and ETA: always, never, or (None) on a terminal.
    source_fingerprint : str, optional
        Identifies the source's contents (default: from its readers).

    Raises
    ------
    TypeError, ValueError
        Bad arguments (before anything is created).
    DataError
        ``out`` holds another preparation (a different source or options),
        or files helmholtz did not write; a source image cannot be decoded
        (unless the source reader skips bad files).
    """
    size = check_size(size)
    if size is None:
        raise ValueError("size is required: give (H, W), e.g. --size 64x64")
    fit = check_fit(fit)
    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be 'RGB' or 'L'; got {mode!r}")
    if workers is None:
        workers = _default_workers()
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be an int >= 1; got {workers!r}")
    c = 3 if mode == "RGB" else 1
    per_image = size[0] * size[1] * c
    if shard_size is None:
        shard_size = max(1, _TARGET_SHARD_BYTES // per_image)
    if isinstance(shard_size, bool) or not isinstance(shard_size, (int, np.integer)) or shard_size < 1:
        raise ValueError(f"shard_size must be an int >= 1; got {shard_size!r}")
    root = _check_out(out)
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    first = next(iter(readers.values()))
    classes = list(first.classes)
    exact = bool(getattr(first, "exact", False))
    options = {"size": list(size), "fit": fit, "mode": mode, "shard_size": int(shard_size), "exact": exact,
               "decoder": "pillow (full size)" if exact else decoder()}
    if source_fingerprint is None:
        source_fingerprint = hashlib.sha256("|".join(f"{s}:{r.fingerprint()}" for s, r in sorted(readers.items())).encode()).hexdigest()
    plan = {s: {"images": len(r), "shards": -(-len(r) // int(shard_size))} for s, r in readers.items()}
    identity = {"source": source, "source_fingerprint": source_fingerprint, "options": options}
    if root.exists() and any(root.iterdir()):
        if not (root / MANIFEST).is_file():
            raise DataError(f"out {str(root)!r} holds files that helmholtz prepare did not write; give a new or empty folder")
        old = read_manifest(root)
        mine = {"source": old.get("source"), "source_fingerprint": old.get("source_fingerprint"), "options": old.get("options")}
        if mine != identity:
            what = [k for k in ("source", "source_fingerprint", "options") if mine.get(k) != identity[k]]
            detail = "; ".join(f"{k}: {mine.get(k)!r} there, {identity[k]!r} now" for k in what)
            raise DataError(
                f"out {str(root)!r} holds another preparation ({detail}); one folder holds one source prepared one way: "
                "give a new --out, or repeat the original command to resume it"
            )
        if old.get("complete"):
            counts = ", ".join(f"{s} {v['images']}" for s, v in old["splits"].items())
            log(f"{root}: already prepared ({counts} images)")
            return PrepareResult(written=0, resumed=sum(len(v["shards"]) for v in old["splits"].values()),
                                 images={s: v["images"] for s, v in old["splits"].items()}, skipped=old.get("skipped", 0), seconds=0.0)
    root.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": FORMAT, "version": FORMAT_VERSION, "helmholtz_version": __version__, "name": name or first.name,
        "classes": classes, "channels": c, "complete": False, "plan": plan, **identity,
    }
    _write_atomic(root / MANIFEST, json.dumps(manifest, indent=1).encode())
    t0 = time.perf_counter()
    result = PrepareResult(written=0, resumed=0, images={}, skipped=0, seconds=0.0)
    splits: dict[str, dict] = {}
    for split, reader in readers.items():
        folder = root / split
        folder.mkdir(exist_ok=True)
        for leftover in folder.glob(".*.tmp"):  # a killed writer's half-written shard (only prepare names files so)
            leftover.unlink(missing_ok=True)
        n = len(reader)
        shards_info: list[dict] = []
        todo: list[int] = []
        for k in range(plan[split]["shards"]):
            marker = folder / f"{k:05d}.json"
            if marker.is_file():
                try:
                    shards_info.append(json.loads(marker.read_text()))
                    result["resumed"] += 1
                    continue
                except (OSError, ValueError):
                    pass
            shards_info.append({})
            todo.append(k)
        bar = _progress(n, f"prepare {split}", progress)
        bar.update(sum(min(shard_size, n - k * shard_size) for k in range(plan[split]["shards"]) if k not in todo))
        # A shard is written (and hashed and fsynced) in a thread while the next one is decoded; one write at a time.
        writer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="helmholtz-prepare-writer")
        pending: concurrent.futures.Future | None = None
        try:
            for k, images, labels, bad in _shard_stream(reader, todo, int(shard_size), size, fit, mode, workers, bar, folder):
                if pending is not None:
                    pending.result()
                pending = writer.submit(_write_shard, folder, k, images, labels, bad, shards_info)
                result["written"] += 1
            if pending is not None:
                pending.result()
        finally:
            writer.shutdown(wait=True)
            bar.close()
        for info in shards_info:
            if info.get("skipped"):
                for f in info["skipped"][:5]:
                    log(f"skipped (cannot be decoded): {f}")
        skipped = sum(len(i.get("skipped", [])) for i in shards_info)
        count = sum(i["count"] for i in shards_info)
        if count == 0:
            raise DataError(f"{first.name}: the {split} split has no images that could be decoded")
        splits[split] = {"images": count, "skipped": skipped, "shards": [{"count": i["count"], "images_sha256": i["images_sha256"],
                                                                          "labels_sha256": i["labels_sha256"]} for i in shards_info]}
        result["images"][split] = count
        result["skipped"] += skipped
    digest = hashlib.sha256(json.dumps({"options": options, "classes": classes, "channels": c, "splits": splits}, sort_keys=True).encode())
    manifest.update(complete=True, splits=splits, skipped=result["skipped"], fingerprint=digest.hexdigest())
    _write_atomic(root / MANIFEST, json.dumps(manifest, indent=1).encode())
    result["seconds"] = time.perf_counter() - t0
    return result


def _write_shard(folder: Path, k: int, images: np.ndarray | Path, labels: np.ndarray, bad: list, shards_info: list) -> None:
    """Shard ``k``'s images (an array, or the file the workers wrote) and labels, then its ``.json`` (last: it marks the shard done)."""
    stem = folder / f"{k:05d}"
    if isinstance(images, Path):
        with open(images, "rb+") as f:
            os.fsync(f.fileno())
        images_sha = _sha256_file(images)
        os.replace(images, stem.with_suffix(".npy"))
        count = int(labels.shape[0])
    else:
        images_sha = _save_npy_atomic(stem.with_suffix(".npy"), images)
        count = int(images.shape[0])
    labels_sha = _save_npy_atomic(Path(str(stem) + ".labels.npy"), labels.astype(np.int64))
    info = {"count": count, "images_sha256": images_sha, "labels_sha256": labels_sha, "skipped": bad}
    _write_atomic(folder / f"{k:05d}.json", json.dumps(info).encode())
    shards_info[k] = info


def _npy_header_bytes(shape: tuple) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.dtype(np.uint8).str, "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


def _part_path(folder: Path, k: int) -> Path:
    return folder / f".{k:05d}.npy.part.tmp"  # ".*.tmp": what a resumed prepare clears away


def _decode_into_file(task: tuple) -> tuple[np.ndarray, list[str]]:
    """Decode a task's images and write them straight into their rows of the shard's file (nothing returns but the ok mask)."""
    indices, path, header, count, row = task
    images, ok, bad = _fitted_images(indices)
    per_image = images[0].nbytes if len(images) else 0
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        whole = len(header) + count * per_image
        if os.fstat(fd).st_size < whole:  # the first task of the shard to get here sizes the file; the others find it so
            os.ftruncate(fd, whole)
        os.pwrite(fd, header, 0)  # every task writes the same header: no order needed between them
        os.pwrite(fd, memoryview(np.ascontiguousarray(images)).cast("B"), len(header) + row * per_image)
    finally:
        os.close(fd)
    return ok, bad


def _shard_stream(reader: Reader, todo: Sequence[int], shard_size: int, size, fit, mode, workers, bar, folder: Path) -> Iterator[tuple]:
    """``(shard, images, labels, bad files)`` for each shard in ``todo``, decoded by ``workers`` processes in a fixed order.

    ``images`` is an array, or (decoding in worker processes) the path of a
    file the workers wrote the shard's ``.npy`` into, row by row.
    """
    if not todo:
        return
    n = len(reader)
    per_image = size[0] * size[1] * (3 if mode == "RGB" else 1)
    decodes = isinstance(reader, FileReader) or getattr(reader, "encoded", None) is not None
    needs_fit = decodes or reader.image_shape is None or reader.image_shape[:2] != tuple(size)
    chunk = max(1, min(64 if decodes else 4096, (8 << 20) // per_image))
    tasks = [np.arange(s, min(s + chunk, min((k + 1) * shard_size, n))) for k in todo for s in range(k * shard_size, min((k + 1) * shard_size, n), chunk)]
    owner = np.concatenate([np.full(len(range(k * shard_size, min((k + 1) * shard_size, n), chunk)), k) for k in todo])
    c = 3 if mode == "RGB" else 1
    count = {int(k): min(shard_size, n - int(k) * shard_size) for k in todo}
    pool = None
    direct = workers > 1 and decodes and len(tasks) > 1  # workers write the rows themselves: no pixels pass through this process
    if workers > 1 and needs_fit and len(tasks) > 1:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        ctx = multiprocessing.get_context(method)
        pool = ctx.Pool(workers, initializer=_init_worker, initargs=(reader, size, fit, mode))
        if direct:
            headers = {k: _npy_header_bytes((count[k], *size, c)) for k in count}
            jobs = [(t, str(_part_path(folder, int(k))), headers[int(k)], count[int(k)], int(t[0] - int(k) * shard_size)) for t, k in zip(tasks, owner)]
            results = pool.imap(_decode_into_file, jobs, chunksize=1)
        else:
            results = pool.imap(_fitted_images, tasks, chunksize=1)
    else:
        _init_worker(reader, size, fit, mode)
        results = map(_fitted_images, tasks)
    try:
        shard, buf, kept, labels, bads, oks = None, None, 0, [], [], []
        for task, k, result in zip(tasks, owner, results):
            images, ok, bad = (None, *result) if direct else result
            if k != shard:  # a new shard: one buffer, filled in place (the shard is never held twice)
                shard, kept, labels, bads, oks = int(k), 0, [], [], []
                buf = None if direct else np.empty((count[shard], *size, c), np.uint8)
            m = int(ok.sum())
            if not direct:
                buf[kept : kept + m] = images if m == len(task) else images[ok]
            kept += m
            oks.append(ok)
            labels.append(reader.labels[task[ok]])
            bads += bad
            bar.update(len(task))
            if task[-1] + 1 == min((shard + 1) * shard_size, n):  # the shard's last task: it is whole
                if direct:
                    part = _part_path(folder, shard)
                    if kept < count[shard]:  # files left out: keep the good rows only (rare: --skip-bad)
                        rows = np.load(part, mmap_mode="r")[np.concatenate(oks)]
                        part.unlink()
                        yield shard, rows, np.concatenate(labels), bads
                    else:
                        yield shard, part, np.concatenate(labels), bads
                else:
                    yield shard, buf[:kept], np.concatenate(labels), bads
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def load_prepared(path: Any, data_dir: Any = None) -> PreparedDataset:
    """The prepared set at ``path`` (``data_dir`` resolves a relative path)."""
    p = Path(path).expanduser()
    if not p.is_dir() and data_dir is not None and (Path(data_dir).expanduser() / path).is_dir():
        p = Path(data_dir).expanduser() / path
    if not p.is_dir():
        raise DataError(f"prepared set {str(p)!r} is not a folder (make one with helmholtz prepare SOURCE --size HxW --out DIR)")
    return PreparedDataset(p)
