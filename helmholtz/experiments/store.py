"""The results database of a sweep: one SQLite file, one row per finished trial.

Guarantees
----------
* **Whole trials only.** A row is written in one transaction when its trial
  ends, under a unique key, so a sweep killed at any moment and run again
  neither loses nor duplicates a trial.
* **One trainer per trial.** Before training, a worker *claims* its trial
  with a lease (owner, pid, host, heartbeat) in the same database. Sweeps
  started at once on one ``--out`` (or the K workers of
  ``--trials-per-device K``) therefore never train a trial twice. A lease
  whose owner stopped sending heartbeats, or whose process is gone from this
  host, is stale and is taken over.
* **Only the row's writer commits its files.** Files that belong to a row
  (a trial's final weights, later its checkpoints) are written under names of
  their own (``models/<key hash>-<token>.pt``), never over another file, and
  become part of the results only through the row that names them. A worker
  whose lease was taken over while it was stopped, and which finishes after
  the new owner stored the trial, finds the row there and deletes its own
  files: the stored row and the file it names always match.
* **Checked before work.** Opening a store for writing checks that the file
  and its folder can be written (SQLite needs a journal beside the file), and
  an output folder that cannot hold a database (empty, ``/``, an existing
  file, a name too long for the file system, not UTF-8) is refused before
  anything is created.
* **Nothing finished is lost.** If the final write of a finished trial fails
  for any reason (full disk, storage turned read-only, a value SQLite cannot
  hold), the record and its files are saved in a ``.helmholtz-pending``
  folder beside the database, or, when that folder cannot be written, in the
  user's cache directory; the next run that opens the store records it
  without training again. A failed write never leaves a temporary file
  behind, and the next write after it raises :class:`helmholtz.errors.StoreError`,
  never a raw ``sqlite3`` error.
* **A killed writer is recovered.** A rollback journal left by a process
  killed in the middle of a write (a *hot journal*) is rolled back when the
  store is opened, as SQLite does, so the database is back at its last
  committed state; readers on read-only storage read a rolled-back copy.
* **Nothing foreign is touched.** A new database is built in a temporary
  file and linked into place atomically, so no empty or half-made file is
  ever left behind. An existing file is inspected read-only and refused,
  byte for byte unchanged (its journal too), unless helmholtz made it with
  this schema: a 0-byte file, a file that is not SQLite, another program's
  schema, views or triggers, a non-zero ``user_version`` or another
  ``application_id`` all raise :class:`helmholtz.errors.ForeignFileError`; a
  helmholtz database of another schema version raises :class:`helmholtz.errors.StoreError`.

Tables: ``meta`` (application, schema version, store id), ``trials`` (one row
per finished trial, :data:`COLUMNS`), ``evaluations`` (one row per evaluation
of a finished trial, :data:`EVALUATION_COLUMNS`) and ``leases``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sqlite3
import tempfile
import time
import urllib.parse
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ..errors import ForeignFileError, StoreError

__all__ = [
    "ResultStore",
    "Owner",
    "Heartbeat",
    "SCHEMA_VERSION",
    "APPLICATION_ID",
    "DB_NAME",
    "PENDING_DIR",
    "COLUMNS",
    "EVALUATION_COLUMNS",
    "INT64_MAX",
    "db_path",
    "user_cache_dir",
    "check_output_folder",
    "write_new_file",
]

SCHEMA_VERSION = 2
DB_NAME = "results.sqlite"
#: ``PRAGMA application_id`` of every helmholtz results database ("HLMZ").
APPLICATION_ID = 0x484C4D5A
PENDING_DIR = ".helmholtz-pending"
_APP = "helmholtz"
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: The largest integer a SQLite INTEGER column holds (seeds, subset sizes, epochs beyond it cannot be stored).
INT64_MAX = 2**63 - 1

#: column name -> SQL type, in table order (``key`` is the unique trial key).
COLUMNS: dict[str, str] = {
    "key": "TEXT NOT NULL UNIQUE",
    "dataset": "TEXT NOT NULL",
    "model": "TEXT NOT NULL",
    "quality": "INTEGER",
    "bitrate": "REAL",
    "seed": "INTEGER NOT NULL",
    "recipe": "TEXT NOT NULL",
    "epochs": "INTEGER NOT NULL",
    "train_subset": "INTEGER",
    "test_subset": "INTEGER",
    "image_size": "TEXT",
    "params": "INTEGER",
    "bpp": "REAL",
    "bits_per_second": "REAL",
    "test_accuracy": "REAL",
    "best_test_accuracy": "REAL",
    "best_epoch": "INTEGER",
    "convergence_epoch": "INTEGER",
    "accuracy_curve": "TEXT",
    "loss_curve": "TEXT",
    "train_images": "INTEGER",
    "test_images": "INTEGER",
    "pixels_per_image": "INTEGER",
    "wall_time_s": "REAL",
    "train_time_s": "REAL",
    "compress_time_s": "REAL",
    "images_per_s": "REAL",
    "device": "TEXT",
    "host": "TEXT",
    "source_sha256": "TEXT",
    "data_sha256": "TEXT",
    "weights": "TEXT",
    "weights_sha256": "TEXT",
    "helmholtz_version": "TEXT",
    "git_revision": "TEXT",
    "pillow_version": "TEXT",
    "libjpeg_turbo_version": "TEXT",
    "numpy_version": "TEXT",
    "torch_version": "TEXT",
    "python_version": "TEXT",
    "recipe_json": "TEXT",
    "owner": "TEXT",
    "finished_at": "TEXT",
    "extra": "TEXT",
}
_JSON_COLUMNS = ("accuracy_curve", "loss_curve", "recipe_json", "extra")

#: Columns of the ``evaluations`` table (``key`` is the unique evaluation key).
EVALUATION_COLUMNS: dict[str, str] = {
    "key": "TEXT NOT NULL UNIQUE",
    "trial_key": "TEXT NOT NULL",
    "eval": "TEXT NOT NULL",
    "eval_quality": "INTEGER",
    "eval_bitrate": "REAL",
    "eps": "REAL NOT NULL",
    "defense_quality": "INTEGER",
    "accuracy": "REAL NOT NULL",
    "images": "INTEGER NOT NULL",
    "seed": "INTEGER",
    "wall_time_s": "REAL",
    "finished_at": "TEXT",
    "extra": "TEXT",
}

_LEASE_COLUMNS = (
    "key TEXT PRIMARY KEY, owner TEXT NOT NULL, run TEXT NOT NULL, pid INTEGER NOT NULL, host TEXT NOT NULL, "
    "started_at REAL NOT NULL, heartbeat REAL NOT NULL, state TEXT NOT NULL, error TEXT"
)
_LEASE_FIELDS = ("key", "owner", "run", "pid", "host", "started_at", "heartbeat", "state", "error")
_TABLES = {"meta", "trials", "evaluations", "leases"}


def db_path(out: str | os.PathLike) -> Path:
    """The database file for an output folder ``out`` (or ``out`` itself if it names a file)."""
    p = Path(out)
    return p if p.is_file() or p.suffix in (".sqlite", ".db") else p / DB_NAME


def user_cache_dir() -> Path:
    """helmholtz's folder in the user's cache: ``$HELMHOLTZ_CACHE_DIR``, else ``$XDG_CACHE_HOME/helmholtz``, else ``~/.cache/helmholtz``."""
    if os.environ.get("HELMHOLTZ_CACHE_DIR"):
        return Path(os.environ["HELMHOLTZ_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(base).expanduser() / "helmholtz"


def _path_text(out: Any, name: str) -> str:
    """``out`` as text that SQLite and JSON can store: a str or PathLike, not empty, valid UTF-8, no NUL."""
    if isinstance(out, bool) or not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike); got {type(out).__name__}")
    text = os.fspath(out)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{name} must be valid UTF-8, which the results database stores; got {text!r}") from None
    if not text.strip():
        raise ValueError(f"{name} must name a folder; got an empty path {text!r}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            f"{name} must be valid UTF-8, which the results database stores; got {text.encode('utf-8', 'surrogateescape')!r}"
        ) from None
    if "\x00" in text:
        raise ValueError(f"{name} must not hold a NUL character; got {text!r}")
    return text


def _nearest_existing(p: Path) -> Path:
    """The longest leading part of ``p`` that exists (``p`` itself, a parent, or the current folder)."""
    for candidate in (p, *p.parents):
        try:
            candidate.lstat()
            return candidate
        except OSError:
            continue
    return Path(".")


def check_output_folder(out: Any, name: str = "out") -> Path:
    """Refuse, before anything is created, an output folder that helmholtz may not create or use.

    The folder may exist (a folder) or not (then helmholtz creates it); it
    must not be empty, the root folder or an existing file, its name must
    fit the file system, and it must be valid UTF-8 (the database stores
    paths as text). Nothing is created or changed.

    Parameters
    ----------
    out : str or os.PathLike
    name : str
        What to call ``out`` in messages (``"out"``; the command line says ``--out``).

    Returns
    -------
    Path

    Raises
    ------
    TypeError
        If ``out`` is not a path.
    ValueError
        If it is empty, ``/``, an existing file, not UTF-8, or too long.
    """
    text = _path_text(out, name)
    p = Path(text)
    absolute = Path(os.path.abspath(text))
    if absolute == Path(absolute.anchor):
        raise ValueError(f"{name} must be a folder for the results, not the root folder {absolute.anchor!r}")
    existing = _nearest_existing(absolute)
    try:
        name_max = os.pathconf(existing if existing.is_dir() else existing.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    try:
        path_max = os.pathconf(existing if existing.is_dir() else existing.parent, "PC_PATH_MAX")
    except (OSError, ValueError):
        path_max = 4096
    for part in absolute.parts[1:]:
        if len(os.fsencode(part)) > name_max:
            raise ValueError(f"{name} has a name of {len(os.fsencode(part))} bytes ({part[:40]!r}...); this file system allows {name_max}")
    if len(os.fsencode(str(absolute / PENDING_DIR / ("x" * 80)))) >= path_max:
        raise ValueError(f"{name} is a path of {len(os.fsencode(str(absolute)))} bytes; this file system allows paths of {path_max}")
    if existing == absolute and not absolute.is_dir():
        raise ValueError(f"{name} {text!r} is an existing file; it must be a folder (helmholtz writes results.sqlite and models/ into it)")
    if existing != absolute and not existing.is_dir():
        raise ValueError(f"{name} {text!r} lies under {str(existing)!r}, which is a file, not a folder")
    return p


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def write_new_file(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` durably to ``path``, which must not exist yet; never replaces a file.

    The bytes go to a temporary file in the same folder (fsynced), which is
    then linked to ``path``; the temporary file is removed whatever fails
    (a full disk, read-only storage, Ctrl-C), so a failed write leaves
    nothing behind. The folder is created if missing.

    Raises
    ------
    FileExistsError
        If ``path`` exists (it is left unchanged).
    OSError
        If the file cannot be written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_durably(path, data, replace=False)
    return path


def _write_durably(path: Path, data: bytes, *, replace: bool) -> None:
    """Write ``data`` to a temporary file beside ``path`` (fsynced), then move it to ``path``; nothing is left on failure.

    ``replace=False`` links the file into place and fails if ``path`` exists;
    ``replace=True`` renames it over ``path`` (for helmholtz's own files).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if the file exists: nothing is ever replaced
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links
                if path.exists():
                    raise FileExistsError(17, "File exists", str(path)) from None
                os.rename(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_folder(path.parent)


@dataclass(frozen=True)
class Owner:
    """Who holds a lease: one process on a host, within one run of ``helmholtz sweep``.

    The workers of one sweep (``--trials-per-device``) share ``run``; a trial
    that failed in a run is not tried again by that run's other workers.
    """

    id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}")
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _fsync_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` durably, replacing it: a temporary file, fsync, rename, fsync of the folder."""
    _write_durably(path, data, replace=True)


def _schema_sql() -> list[str]:
    cols = ",\n  ".join(f"{k} {v}" for k, v in COLUMNS.items())
    ecols = ",\n  ".join(f"{k} {v}" for k, v in EVALUATION_COLUMNS.items())
    return [
        f"PRAGMA application_id = {APPLICATION_ID}",
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"CREATE TABLE trials (\n  id INTEGER PRIMARY KEY,\n  {cols}\n)",
        f"CREATE TABLE evaluations (\n  id INTEGER PRIMARY KEY,\n  {ecols}\n)",
        f"CREATE TABLE leases ({_LEASE_COLUMNS})",
    ]


def _journal(path: Path) -> Path:
    return path.with_name(path.name + "-journal")


def _header_application_id(path: Path) -> int:
    """``PRAGMA application_id`` read from the file's 100-byte header (bytes 68..71), without SQLite."""
    with open(path, "rb") as f:
        head = f.read(100)
    return int.from_bytes(head[68:72], "big") if len(head) == 100 else 0


def _is_hot_journal_error(path: Path, exc: sqlite3.Error) -> bool:
    """Whether ``exc`` says a read-only connection met a rollback journal it may not roll back."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
    if code is not None:
        return code == 776  # SQLITE_READONLY_ROLLBACK
    try:
        return "readonly" in str(exc) and _journal(path).stat().st_size > 0
    except OSError:
        return False


def _roll_back(path: Path) -> None:
    """Let SQLite roll back the hot journal of ``path`` (a read-write open does it); raises sqlite3.Error."""
    con = sqlite3.connect(str(path), timeout=60, isolation_level=None)
    try:
        con.execute("SELECT count(*) FROM sqlite_master").fetchone()
    finally:
        con.close()


def _rolled_back_copy(path: Path) -> Path:
    """A private copy of ``path`` and its hot journal, rolled back (for readers on read-only storage)."""
    folder = Path(tempfile.mkdtemp(prefix="helmholtz-store-"))
    try:
        copy = folder / path.name
        shutil.copyfile(path, copy)
        shutil.copyfile(_journal(path), _journal(copy))
        _roll_back(copy)
        return copy
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _inspect(path: Path, readonly: bool = False) -> Path:
    """Refuse ``path`` unless it is a helmholtz database of this schema; returns the file to read.

    Reads only and changes nothing, with one exception: a helmholtz database
    (its header carries :data:`APPLICATION_ID`) with a hot journal left by a
    killed writer is rolled back to its last committed state, as SQLite does
    when it opens such a file for writing. Where it cannot be rolled back in
    place (read-only storage) a reader gets a rolled-back private copy. A
    foreign file's journal is never rolled back.
    """
    checked = _inspect_once(path)
    if checked is None:  # a hot journal
        if _header_application_id(path) != APPLICATION_ID:
            raise ForeignFileError(
                f"{str(path)!r} is a SQLite database of another program with an unfinished write (its rollback journal "
                f"{str(_journal(path))!r}); both were left untouched: choose another --out"
            )
        try:
            _roll_back(path)
        except sqlite3.Error as exc:
            if not readonly:
                raise StoreError(
                    f"{str(path)!r} has an unfinished write of a killed process (rollback journal {str(_journal(path))!r}) that "
                    f"cannot be rolled back here ({exc}); make the folder writable and run again"
                ) from exc
            try:
                copy = _rolled_back_copy(path)
            except (OSError, sqlite3.Error) as exc2:
                raise StoreError(
                    f"{str(path)!r} has an unfinished write of a killed process (rollback journal {str(_journal(path))!r}); "
                    f"it cannot be rolled back in place ({exc}) nor in a copy ({exc2})"
                ) from exc2
            try:
                checked = _inspect_once(copy)
            except BaseException:
                shutil.rmtree(copy.parent, ignore_errors=True)
                raise
        else:
            checked = _inspect_once(path)
        if checked is None:
            raise StoreError(f"{str(path)!r} still has an unfinished write after its rollback journal was rolled back; it was left as it is")
    return checked


def _inspect_once(path: Path) -> Path | None:
    """One read-only inspection of ``path``: the path when it is a helmholtz database, None when a hot journal is in the way."""
    where = str(path)
    if not path.is_file():
        raise ForeignFileError(f"{where!r} exists and is not a file; choose another --out")
    size = path.stat().st_size
    if size == 0:
        raise ForeignFileError(
            f"{where!r} is an empty file; helmholtz never leaves one behind, so another program made it. "
            "It was left untouched: remove it or choose another --out"
        )
    with open(path, "rb") as f:
        head = f.read(len(_SQLITE_MAGIC))
    if head != _SQLITE_MAGIC:
        raise ForeignFileError(f"{where!r} is not a SQLite file, so not a helmholtz results database; it was left untouched: choose another --out")
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    try:
        con = sqlite3.connect(uri, uri=True, timeout=60)
    except sqlite3.Error as exc:
        raise StoreError(f"{where!r} cannot be opened ({exc}); it was left untouched") from exc
    try:
        app_id = con.execute("PRAGMA application_id").fetchone()[0]
        user_version = con.execute("PRAGMA user_version").fetchone()[0]
        objects = con.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall()
        tables = {n for t, n in objects if t == "table"}
        others = sorted(f"{t} {n}" for t, n in objects if t not in ("table", "index"))
        meta = dict(con.execute("SELECT name, value FROM meta").fetchall()) if "meta" in tables else {}
        trial_cols = {r[1] for r in con.execute("PRAGMA table_info(trials)")} if "trials" in tables else set()
        eval_cols = {r[1] for r in con.execute("PRAGMA table_info(evaluations)")} if "evaluations" in tables else set()
    except sqlite3.DatabaseError as exc:
        if _is_hot_journal_error(path, exc):
            return None
        raise ForeignFileError(f"{where!r} is not a readable SQLite database ({exc}); it was left untouched: choose another --out") from exc
    finally:
        con.close()
    untouched = "it was left untouched: choose another --out"
    if meta.get("application") == _APP and app_id == 0 and user_version == 0 and {"meta", "trials"} <= tables:
        raise StoreError(
            f"{where!r} holds results of an older helmholtz (schema version {meta.get('schema_version')}); this helmholtz reads "
            f"version {SCHEMA_VERSION}. Report it with the helmholtz version that wrote it, or start a new --out (the file was left unchanged)"
        )
    if app_id != APPLICATION_ID:
        raise ForeignFileError(f"{where!r} is a SQLite database of another program (application_id {app_id:#x}, tables {sorted(tables)}); {untouched}")
    if user_version != 0:
        raise ForeignFileError(f"{where!r} has user_version {user_version}, which helmholtz never sets; another program changed it; {untouched}")
    if others:
        raise ForeignFileError(f"{where!r} holds {', '.join(others)}, which helmholtz never creates; {untouched}")
    if tables != _TABLES or meta.get("application") != _APP:
        raise ForeignFileError(f"{where!r} has tables {sorted(tables)}, not helmholtz's {sorted(_TABLES)}; {untouched}")
    if meta.get("schema_version") != str(SCHEMA_VERSION):
        raise StoreError(
            f"{where!r} has results schema version {meta.get('schema_version')}, this helmholtz reads version {SCHEMA_VERSION}; "
            f"use the helmholtz version that wrote it, or start a new --out (the file was left unchanged)"
        )
    missing = [c for c in COLUMNS if c not in trial_cols] + [c for c in EVALUATION_COLUMNS if c not in eval_cols]
    if missing:
        raise StoreError(f"{where!r} lacks columns {missing}; it is damaged (left unchanged)")
    return path


def _create(path: Path) -> None:
    """Build a new database next to ``path`` and link it into place atomically (never over an existing file)."""
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the output folder {str(folder)!r} ({exc})") from exc
    tmp = folder / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        con = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            for sql in _schema_sql():
                con.execute(sql)
            con.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [("application", _APP), ("schema_version", str(SCHEMA_VERSION)), ("created_at", _now()), ("store_id", uuid.uuid4().hex)],
            )
        finally:
            con.close()
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails if the file appeared meanwhile: the first creator wins
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links: rename, unless the file exists by now
            if not path.exists():
                os.rename(tmp, path)
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(f"cannot create the results database {str(path)!r} ({exc})") from exc
    finally:
        tmp.unlink(missing_ok=True)


class ResultStore:
    """Open (or create) the results database of an output folder.

    Parameters
    ----------
    out : path
        The sweep's output folder (the database is ``out/results.sqlite``) or
        the database file itself.
    create : bool
        Create folder and database when missing; with ``False`` a missing
        database raises ``FileNotFoundError``.
    readonly : bool
        Open for reading only (``helmholtz report``): nothing is checked for
        writing and nothing pending is recorded.

    Raises
    ------
    ForeignFileError
        If a file that helmholtz did not create is in the way (left unchanged).
    StoreError
        If the database is of another schema version, or cannot be written.
    """

    def __init__(self, out: str | os.PathLike, *, create: bool = True, readonly: bool = False) -> None:
        _path_text(out, "out")
        self.path = db_path(out)
        self.readonly = bool(readonly)
        self._conn: sqlite3.Connection | None = None
        self._copy: Path | None = None  # a rolled-back private copy read instead of self.path (read-only storage)
        #: Pending records that could not be recorded when the store was opened: ``(file, why)``.
        self.unrecovered: list[tuple[Path, str]] = []
        if self.path.exists():
            read = _inspect(self.path, readonly=self.readonly)
        elif not create or readonly:
            raise FileNotFoundError(f"no results database at {str(self.path)!r}; run `helmholtz sweep --out {out}` first")
        else:
            check_output_folder(self.path.parent)
            _create(self.path)
            read = _inspect(self.path)
        if read != self.path:
            self._copy = read
        try:
            if readonly:
                uri = f"file:{urllib.parse.quote(str(read.resolve()))}?mode=ro"
                self._conn = sqlite3.connect(uri, uri=True, timeout=60, isolation_level=None, check_same_thread=False)
            else:
                self._conn = self._connect()
                self._probe_writable()
            self.store_id = self.meta().get("store_id", "")
        except sqlite3.Error as exc:
            self.close()
            raise StoreError(f"cannot open {str(self.path)!r} ({exc})") from exc
        self.recovered: list[str] = [] if readonly else self.recover_pending()

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the store {str(self.path)!r} is closed")
        return self._conn

    @property
    def folder(self) -> Path:
        """The folder of the database: files of rows (``models/...``) are named relative to it."""
        return self.path.parent

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(str(self.path), timeout=60, isolation_level=None, check_same_thread=False)

    def _transaction(self, body: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``body`` in one write transaction.

        A failed write (busy past the timeout, a full disk, read-only storage)
        raises :class:`StoreError`; the connection is left usable (reopened
        if SQLite could not roll back), so the next call fails or succeeds
        on its own. Errors of ``body`` itself (a bad record) propagate as
        they are, after the rollback.
        """
        c = self.conn
        try:
            c.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._recover_connection()
            raise self._write_error(exc) from exc
        try:
            out = body(c)
            c.execute("COMMIT")
        except BaseException as exc:
            self._recover_connection()
            if isinstance(exc, sqlite3.Error):
                raise self._write_error(exc) from exc
            raise
        return out

    def _write_error(self, exc: sqlite3.Error) -> StoreError:
        return StoreError(f"cannot write the results database {str(self.path)!r} ({exc})")

    def _recover_connection(self) -> None:
        """Roll back whatever is open; if SQLite cannot (a failed commit on a full disk), start a fresh connection."""
        c = self._conn
        if c is None:
            return
        try:
            if c.in_transaction:
                c.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        if c.in_transaction:
            try:
                c.close()
            except sqlite3.Error:
                pass
            self._conn = None
            try:
                self._conn = self._connect()
            except sqlite3.Error:
                self._conn = None

    def _probe_writable(self) -> None:
        """Fail now, before any training, if the file or its folder (for the journal) is not writable."""
        c = self.conn
        try:
            c.execute("BEGIN IMMEDIATE")
            c.execute("INSERT INTO leases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (f"probe:{uuid.uuid4().hex}", "probe", "probe", os.getpid(), socket.gethostname(), 0.0, 0.0, "probe", None))
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot write the results database {str(self.path)!r} ({exc}); SQLite needs the file and its folder to be "
                "writable. Fix the permissions or choose another --out"
            ) from exc
        finally:
            try:
                c.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def meta(self) -> dict[str, str]:
        """The ``meta`` table: application, schema_version, created_at, store_id."""
        return dict(self.conn.execute("SELECT name, value FROM meta").fetchall())

    # -- reading ----------------------------------------------------------------------------
    def finished_keys(self) -> set[str]:
        """Keys of every finished trial."""
        return {r[0] for r in self.conn.execute("SELECT key FROM trials")}

    def __contains__(self, key: object) -> bool:
        return self.conn.execute("SELECT 1 FROM trials WHERE key = ?", (key,)).fetchone() is not None

    def __len__(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0])

    def records(self) -> list[dict[str, Any]]:
        """Every trial as a dict (JSON columns decoded), in insertion order."""
        cur = self.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM trials ORDER BY id")
        out = []
        for row in cur.fetchall():
            rec = dict(zip(COLUMNS, row))
            for k in _JSON_COLUMNS:
                rec[k] = json.loads(rec[k]) if rec[k] else None
            out.append(rec)
        return out

    def record(self, key: str) -> dict[str, Any]:
        """The stored trial ``key`` (KeyError when it is not finished)."""
        cur = self.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM trials WHERE key = ?", (key,))
        row = cur.fetchone()
        if row is None:
            raise KeyError(key)
        rec = dict(zip(COLUMNS, row))
        for k in _JSON_COLUMNS:
            rec[k] = json.loads(rec[k]) if rec[k] else None
        return rec

    def source_fingerprints(self, dataset: str, train_subset: int | None, test_subset: int | None, image_size: str | None = None) -> set[str]:
        """The ``source_sha256`` values stored for trials of one data group (data set, subset sizes, image size)."""
        rows = self.conn.execute(
            "SELECT DISTINCT source_sha256 FROM trials WHERE dataset = ? AND train_subset IS ? AND test_subset IS ? AND image_size IS ? "
            "AND source_sha256 IS NOT NULL",
            (dataset, train_subset, test_subset, image_size),
        ).fetchall()
        return {r[0] for r in rows}

    # -- leases -----------------------------------------------------------------------------
    def _lease_is_live(self, lease: dict, owner: Owner, now: float, stale_after: float) -> bool:
        """Whether a lease still holds against ``owner``: its own, failed in its run, or fresh and alive."""
        if lease["owner"] == owner.id or (lease["state"] == "failed" and lease["run"] == owner.run):
            return True  # a worker runs one trial at a time; a failure is not retried within its run
        fresh = now - lease["heartbeat"] < stale_after
        alive = _pid_alive(lease["pid"]) if lease["host"] == socket.gethostname() else True
        return fresh and alive

    def claim(self, keys: Sequence[str], owner: Owner, *, stale_after: float) -> str | None:
        """Claim the first of ``keys`` that is neither finished nor held by a live lease.

        A lease is stale when its heartbeat is older than ``stale_after``
        seconds, or when its process is gone from this host; stale leases are
        taken over. Returns the claimed key, or None when nothing is free.
        """
        now = time.time()

        def body(c: sqlite3.Connection) -> str | None:
            done = {r[0] for r in c.execute("SELECT key FROM trials")} | {r[0] for r in c.execute("SELECT key FROM evaluations")}
            held = {r[0]: dict(zip(_LEASE_FIELDS, r)) for r in c.execute(f"SELECT {', '.join(_LEASE_FIELDS)} FROM leases")}
            for key in keys:
                if key in done or (key in held and self._lease_is_live(held[key], owner, now, stale_after)):
                    continue
                c.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (key, owner.id, owner.run, owner.pid, owner.host, now, now, "running", None))
                return key
            return None

        return self._transaction(body)

    def blockers(self, keys: Sequence[str], owner: Owner, *, stale_after: float) -> list[dict[str, Any]]:
        """The live leases of other owners that hold unfinished ``keys`` and are still running."""
        now = time.time()
        wanted = set(keys) - self.finished_keys() - self.finished_evaluation_keys()
        return [
            lease for lease in self.leases()
            if lease["key"] in wanted and lease["state"] == "running" and lease["owner"] != owner.id
            and self._lease_is_live(lease, owner, now, stale_after)
        ]

    def leases(self) -> list[dict[str, Any]]:
        """Every lease, oldest first."""
        cur = self.conn.execute(f"SELECT {', '.join(_LEASE_FIELDS)} FROM leases ORDER BY started_at")
        return [dict(zip(_LEASE_FIELDS, r)) for r in cur.fetchall()]

    def heartbeat(self, owner: Owner) -> int:
        """Refresh every lease of ``owner``; returns how many it holds."""
        return self._transaction(lambda c: c.execute("UPDATE leases SET heartbeat = ? WHERE owner = ?", (time.time(), owner.id)).rowcount)

    def mark_failed(self, key: str, owner: Owner, error: str) -> None:
        """Record that ``owner`` failed ``key``: the other workers of its run skip it, later runs try again."""
        self._transaction(lambda c: c.execute("UPDATE leases SET state = 'failed', error = ? WHERE key = ? AND owner = ?", (error[:2000], key, owner.id)))

    def release(self, key: str, owner: Owner) -> None:
        """Give up ``owner``'s lease on ``key`` (after an interruption)."""
        self._transaction(lambda c: c.execute("DELETE FROM leases WHERE key = ? AND owner = ?", (key, owner.id)))

    def release_run(self, run: str) -> None:
        """Drop every lease of one sweep run (its failure markers included) when the run ends."""
        self._transaction(lambda c: c.execute("DELETE FROM leases WHERE run = ?", (run,)))

    def release_all(self, owner: Owner) -> None:
        """Give up every lease of ``owner`` (when its worker stops)."""
        self._transaction(lambda c: c.execute("DELETE FROM leases WHERE owner = ?", (owner.id,)))

    # -- writing ----------------------------------------------------------------------------
    def _insert(self, c: sqlite3.Connection, table: str, columns: dict[str, str], record: dict[str, Any]) -> bool:
        unknown = set(record) - set(columns)
        if unknown:
            raise ValueError(f"record has unknown columns {sorted(unknown)}")
        required = [k for k, t in columns.items() if "NOT NULL" in t and record.get(k) is None]
        if required:
            raise ValueError(f"record lacks required columns {required}")
        row = dict(record)
        row.setdefault("finished_at", _now())
        for k in _JSON_COLUMNS:
            if row.get(k) is not None and not isinstance(row[k], str):
                row[k] = json.dumps(row[k], default=str)
        names = list(row)
        sql = f"INSERT OR IGNORE INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"
        return c.execute(sql, [row[k] for k in names]).rowcount == 1

    def add(self, record: dict[str, Any], owner: Owner | None = None) -> bool:
        """Insert one finished trial (and drop ``owner``'s lease on it) in one transaction.

        Returns False, changing nothing, if a trial with the same key is
        already stored.

        Raises
        ------
        TypeError, ValueError
            If ``record`` is not a dict, has unknown columns or lacks required ones.
        OverflowError, UnicodeEncodeError
            If a value cannot be stored (an int beyond 64 bits, text that is not UTF-8).
        StoreError
            If the write fails; see :meth:`add_or_keep` for the variant that keeps the record.
        """
        if not isinstance(record, dict):
            raise TypeError(f"record must be a dict; got {type(record).__name__}")

        def body(c: sqlite3.Connection) -> bool:
            new = self._insert(c, "trials", COLUMNS, record)
            if owner is not None:
                c.execute("DELETE FROM leases WHERE key = ? AND owner = ?", (record["key"], owner.id))
            return new

        return self._transaction(body)

    def add_evaluation(self, record: dict[str, Any], owner: Owner | None = None) -> bool:
        """Insert one finished evaluation (see :data:`EVALUATION_COLUMNS`), like :meth:`add`."""
        if not isinstance(record, dict):
            raise TypeError(f"record must be a dict; got {type(record).__name__}")

        def body(c: sqlite3.Connection) -> bool:
            new = self._insert(c, "evaluations", EVALUATION_COLUMNS, record)
            if owner is not None:
                c.execute("DELETE FROM leases WHERE key = ? AND owner = ?", (record["key"], owner.id))
            return new

        return self._transaction(body)

    def evaluations(self) -> list[dict[str, Any]]:
        """Every evaluation as a dict, in insertion order."""
        cur = self.conn.execute(f"SELECT {', '.join(EVALUATION_COLUMNS)} FROM evaluations ORDER BY id")
        out = []
        for row in cur.fetchall():
            rec = dict(zip(EVALUATION_COLUMNS, row))
            rec["extra"] = json.loads(rec["extra"]) if rec["extra"] else None
            out.append(rec)
        return out

    def finished_evaluation_keys(self) -> set[str]:
        """Keys of every finished evaluation."""
        return {r[0] for r in self.conn.execute("SELECT key FROM evaluations")}

    # -- files of rows ------------------------------------------------------------------------
    def _file_path(self, relative: Any) -> Path:
        """The file a row names (``models/x.pt``), checked to lie inside the store's folder."""
        rel = Path(relative) if isinstance(relative, str) and relative else None
        if rel is None or rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ValueError(f"a row's file must be a relative path inside {str(self.folder)!r}; got {relative!r}")
        return self.folder / rel

    def _stored_value(self, table: str, key: str, column: str) -> Any:
        row = self.conn.execute(f"SELECT {column} FROM {table} WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def _discard_files(self, table: str, record: dict[str, Any], columns: Iterable[str]) -> None:
        """Delete the files ``record`` names in ``columns``, unless the stored row of its key names them too."""
        for column in columns:
            value = record.get(column)
            if not value:
                continue
            try:
                if self._stored_value(table, record["key"], column) == value:
                    continue  # the stored row is this very record (recorded by an earlier recovery)
            except sqlite3.Error:
                continue  # cannot tell: keep the file
            try:
                self._file_path(value).unlink(missing_ok=True)
            except (OSError, ValueError):
                pass

    def add_or_keep(
        self, record: dict[str, Any], owner: Owner | None = None, *, table: str = "trials", files: dict[str, bytes] | None = None
    ) -> tuple[bool, Path | None]:
        """Store a finished record and its files, or keep them for the next run: a finished result is never lost.

        Parameters
        ----------
        record : dict
            The row (see :data:`COLUMNS`, :data:`EVALUATION_COLUMNS`).
        owner : Owner, optional
            Whose lease on the key to drop with the insert.
        table : {"trials", "evaluations"}
        files : dict, optional
            ``column -> bytes``: files that belong to the row, each written to
            the path ``record[column]`` names relative to the store's folder
            (e.g. ``models/<key hash>-<token>.pt``). Choose names no other
            writer uses: a file is written only where none exists, before the
            row, and deleted again if the key turns out to be stored already
            (by another worker that took over the lease), so a stored row and
            the files it names always belong together.

        Returns
        -------
        (stored, pending_path)
            ``(True, None)`` when written, ``(False, None)`` when the key was
            already stored (this record's files are deleted), and
            ``(False, path)`` when anything failed (a file or the row: a full
            disk, read-only storage, a value SQLite cannot hold) and the record
            and its files were saved at ``path`` for the next run (see
            :meth:`save_pending`). When no place could hold the files either,
            they are dropped and their columns set to None.

        Raises
        ------
        StoreError
            Only if the record could be written nowhere; the message holds it.
        """
        if table not in ("trials", "evaluations"):
            raise ValueError(f"table must be 'trials' or 'evaluations'; got {table!r}")
        files = dict(files or {})
        for column in files:
            self._file_path(record.get(column))
        written: list[str] = []
        try:
            for column, data in files.items():
                write_new_file(self._file_path(record[column]), data)
                written.append(column)
        except OSError:
            for column in written:
                self._file_path(record[column]).unlink(missing_ok=True)
            return False, self.save_pending(record, table, files)
        add = self.add if table == "trials" else self.add_evaluation
        try:
            new = add(record, owner)
        except (StoreError, sqlite3.Error, OSError, OverflowError, UnicodeError):
            return False, self.save_pending(record, table, {column: None for column in files})
        if not new:
            self._discard_files(table, record, files)
        return new, None

    # -- pending records (finished, not yet written) ------------------------------------------
    def pending_dirs(self) -> list[Path]:
        """Where records that could not be written wait: beside the database, then the user's cache."""
        digest = hashlib.sha256(str(self.path.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:16]
        return [self.folder / PENDING_DIR, user_cache_dir() / "pending" / digest]

    def save_pending(self, record: dict[str, Any], table: str = "trials", files: dict[str, bytes | None] | None = None) -> Path:
        """Keep a finished record (and its files) durably for the next run; returns the record's file.

        Tries the folder beside the database first and the user's cache
        directory second. ``files`` maps a column to the bytes of its file,
        saved beside the record, or to None for a file already in place
        (``record[column]``), which the next run keeps if it records the row
        and deletes if the key was stored meanwhile. If no place can hold the
        files, the record is kept without them (their columns set to None).

        Raises
        ------
        StoreError
            If the record can be written nowhere (the message holds the record).
        """
        files = dict(files or {})
        key = str(record.get("key"))
        stem = f"{self.store_id}-{hashlib.sha256(key.encode('utf-8', 'surrogateescape')).hexdigest()[:20]}-{uuid.uuid4().hex[:8]}"
        errors = []

        def attempt(folder: Path, rec: dict[str, Any], staged: dict[str, bytes], placed: list[str]) -> Path:
            doc = {"store_id": self.store_id, "store": str(self.path.resolve()), "table": table, "record": rec,
                   "files": {**{c: {"path": rec[c], "staged": f"{stem}.{c}"} for c in staged}, **{c: {"path": rec[c]} for c in placed}}}
            payload = json.dumps(doc, default=str).encode()
            folder.mkdir(parents=True, exist_ok=True)
            done: list[Path] = []
            try:
                for column, data in staged.items():
                    done.append(write_new_file(folder / f"{stem}.{column}", data))
                path = folder / f"{stem}.json"
                _fsync_write(path, payload)  # the record last: it is what the next run looks for
                return path
            except BaseException:
                for f in done:
                    f.unlink(missing_ok=True)
                with suppress(OSError):
                    folder.rmdir()  # only when empty: a failed attempt leaves nothing behind
                raise

        staged = {c: d for c, d in files.items() if d is not None}
        placed = [c for c, d in files.items() if d is None and record.get(c)]
        for folder in self.pending_dirs():
            try:
                return attempt(folder, record, staged, placed)
            except OSError as exc:
                errors.append(f"{folder}: {exc}")
        if staged:  # no room for the files anywhere: keep the record without them rather than lose it
            for column in staged:
                record[column] = None
                if f"{column}_sha256" in record:
                    record[f"{column}_sha256"] = None
            for folder in self.pending_dirs():
                try:
                    return attempt(folder, record, {}, placed)
                except OSError as exc:
                    errors.append(f"{folder}: {exc}")
        payload = json.dumps({"store_id": self.store_id, "table": table, "record": record}, default=str)
        raise StoreError(f"could not write the finished record {key!r} anywhere ({'; '.join(errors)}); it is: {payload}")

    def recover_pending(self) -> list[str]:
        """Write the records earlier runs could not write; returns their keys.

        Only files made for this very database (same store id) are taken. A
        record's staged files are first put in place (checked against their
        SHA-256 where the record has one), then the row is written; the
        pending files are deleted once the row is stored, or once it turns
        out that the key was stored meanwhile (its own files are deleted
        then too). What cannot be recorded yet stays, listed in
        :attr:`unrecovered`.
        """
        keys = []
        self.unrecovered = []
        for folder in self.pending_dirs():
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob(f"{self.store_id}-*.json")):
                try:
                    key = self._recover_one(folder, path)
                except Exception as exc:  # noqa: BLE001 - whatever fails, the file stays for the next run
                    self.unrecovered.append((path, f"{type(exc).__name__}: {exc}"))
                    continue
                if key is not None:
                    keys.append(key)
            try:
                folder.rmdir()  # only when empty
            except OSError:
                pass
        return keys

    def _recover_one(self, folder: Path, path: Path) -> str | None:
        """Record one pending file; returns its key (None: not a record of this store, left alone)."""
        try:
            doc = json.loads(path.read_text())
        except ValueError as exc:
            raise StoreError(f"{path} is not a readable pending record ({exc}); it was left for you to look at") from exc
        if not isinstance(doc, dict) or doc.get("store_id") != self.store_id or not isinstance(doc.get("record"), dict):
            return None
        record, table = doc["record"], doc.get("table", "trials")
        files = doc.get("files") or {}
        staged: list[Path] = []
        for column, info in files.items():
            if record.get(column) != info.get("path"):
                raise StoreError(f"{path}: the file of column {column!r} does not match its record")
            if "staged" not in info:
                continue
            name = str(info["staged"])
            if Path(name).name != name:
                raise StoreError(f"{path}: a staged file must lie beside the record; got {name!r}")
            source = folder / name
            data = source.read_bytes()
            want = record.get(f"{column}_sha256")
            if want and hashlib.sha256(data).hexdigest() != want:
                raise StoreError(f"{source} does not match the SHA-256 in its record; it was left for you to look at")
            target = self._file_path(record[column])
            try:
                write_new_file(target, data)
            except FileExistsError:
                if target.read_bytes() != data:
                    raise
            staged.append(source)
        add = self.add_evaluation if table == "evaluations" else self.add
        if not add(record):
            self._discard_files(table, record, files)
        for source in staged:
            source.unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        return str(record.get("key"))

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection (and drop the private rolled-back copy, if one was read)."""
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None
        if self._copy is not None:
            shutil.rmtree(self._copy.parent, ignore_errors=True)
            self._copy = None

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path)!r})"


class Heartbeat:
    """A background thread that refreshes an owner's leases every ``interval`` seconds.

    It has its own connection to the database (SQLite connections are not
    shared between threads). Use as a context manager.
    """

    def __init__(self, path: str | os.PathLike, owner: Owner, interval: float) -> None:
        import threading

        self.path, self.owner, self.interval = Path(path), owner, float(interval)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="helmholtz-lease-heartbeat", daemon=True)

    def _run(self) -> None:
        # A failed beat never ends the trial: a busy, full or read-only database is tried again next beat
        # (the worst outcome is a lease that goes stale, which the store's unique keys make harmless).
        con: sqlite3.Connection | None = None
        try:
            while not self._stop.wait(self.interval):
                try:
                    if con is None:  # mode=rw: never create a database where none is (that would be an empty foreign file)
                        uri = f"file:{urllib.parse.quote(str(self.path.resolve()))}?mode=rw"
                        con = sqlite3.connect(uri, uri=True, timeout=max(1.0, self.interval), isolation_level=None)
                    con.execute("UPDATE leases SET heartbeat = ? WHERE owner = ?", (time.time(), self.owner.id))
                except (sqlite3.Error, OSError):
                    if con is not None and con.in_transaction:
                        try:
                            con.close()
                        except sqlite3.Error:
                            pass
                        con = None
        finally:
            if con is not None:
                con.close()

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=max(5.0, 2 * self.interval))
