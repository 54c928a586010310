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
* **Checked before work.** Opening a store for writing checks that the file
  and its folder can be written (SQLite needs a journal beside the file).
* **Nothing finished is lost.** If the final write of a finished trial fails
  anyway (full disk, storage turned read-only), the record is saved as JSON
  in a ``.helmholtz-pending`` folder beside the database, or, when that
  folder cannot be written, in the user's cache directory; the next run that
  opens the store records it without training again.
* **Nothing foreign is touched.** A new database is built in a temporary
  file and linked into place atomically, so no empty or half-made file is
  ever left behind. An existing file is inspected read-only and refused,
  byte for byte unchanged, unless helmholtz made it with this schema: a
  0-byte file, a file that is not SQLite, another program's schema, views or
  triggers, a non-zero ``user_version`` or another ``application_id`` all
  raise :class:`helmholtz.errors.ForeignFileError`; a helmholtz database of
  another schema version raises :class:`helmholtz.errors.StoreError`.

Tables: ``meta`` (application, schema version, store id), ``trials`` (one row
per finished trial, :data:`COLUMNS`), ``evaluations`` (one row per evaluation
of a finished trial, :data:`EVALUATION_COLUMNS`) and ``leases``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import time
import urllib.parse
import uuid
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
    "db_path",
    "user_cache_dir",
]

SCHEMA_VERSION = 2
DB_NAME = "results.sqlite"
#: ``PRAGMA application_id`` of every helmholtz results database ("HLMZ").
APPLICATION_ID = 0x484C4D5A
PENDING_DIR = ".helmholtz-pending"
_APP = "helmholtz"
_SQLITE_MAGIC = b"SQLite format 3\x00"

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
    """Write ``data`` to ``path`` durably: a temporary file, fsync, rename, fsync of the folder."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


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


def _inspect(path: Path) -> None:
    """Refuse ``path`` unless it is a helmholtz database of this schema; reads only, changes nothing."""
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
        if not isinstance(out, (str, os.PathLike)):
            raise TypeError(f"out must be a path; got {type(out).__name__}")
        self.path = db_path(out)
        self.readonly = bool(readonly)
        self._conn: sqlite3.Connection | None = None
        if self.path.exists():
            _inspect(self.path)
        elif not create or readonly:
            raise FileNotFoundError(f"no results database at {str(self.path)!r}; run `helmholtz sweep --out {out}` first")
        else:
            _create(self.path)
            _inspect(self.path)
        try:
            if readonly:
                uri = f"file:{urllib.parse.quote(str(self.path.resolve()))}?mode=ro"
                self._conn = sqlite3.connect(uri, uri=True, timeout=60, isolation_level=None, check_same_thread=False)
            else:
                self._conn = sqlite3.connect(str(self.path), timeout=60, isolation_level=None, check_same_thread=False)
                self._probe_writable()
        except sqlite3.Error as exc:
            self.close()
            raise StoreError(f"cannot open {str(self.path)!r} ({exc})") from exc
        self.store_id = self.meta().get("store_id", "")
        self.recovered: list[str] = [] if readonly else self.recover_pending()

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the store {str(self.path)!r} is closed")
        return self._conn

    def _transaction(self, body: Callable[[sqlite3.Connection], Any]) -> Any:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            out = body(c)
            c.execute("COMMIT")
        except BaseException:
            try:
                c.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise
        return out

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
        sqlite3.Error
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

    def add_or_keep(self, record: dict[str, Any], owner: Owner | None = None, *, table: str = "trials") -> tuple[bool, Path | None]:
        """:meth:`add` (or :meth:`add_evaluation`), keeping the record on disk if the write fails.

        Returns ``(stored, pending_path)``: ``(True, None)`` when written,
        ``(False, None)`` when the key was already stored, and
        ``(False, path)`` when the database could not be written and the
        record was saved at ``path`` for the next run (see :meth:`save_pending`).
        """
        add = self.add if table == "trials" else self.add_evaluation
        try:
            return add(record, owner), None
        except (sqlite3.Error, OSError):
            return False, self.save_pending(record, table)

    # -- pending records (finished, not yet written) ------------------------------------------
    def pending_dirs(self) -> list[Path]:
        """Where records that could not be written wait: beside the database, then the user's cache."""
        digest = hashlib.sha256(str(self.path.resolve()).encode()).hexdigest()[:16]
        return [self.path.parent / PENDING_DIR, user_cache_dir() / "pending" / digest]

    def save_pending(self, record: dict[str, Any], table: str = "trials") -> Path:
        """Keep a finished record durably as JSON for the next run; returns where it went.

        Tries the folder beside the database first and the user's cache
        directory second.

        Raises
        ------
        StoreError
            If neither place can be written (the message holds the record).
        """
        payload = json.dumps({"store_id": self.store_id, "store": str(self.path.resolve()), "table": table, "record": record}, default=str).encode()
        name = f"{self.store_id}-{hashlib.sha256(str(record.get('key')).encode()).hexdigest()[:20]}.json"
        errors = []
        for folder in self.pending_dirs():
            try:
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / name
                _fsync_write(path, payload)
                return path
            except OSError as exc:
                errors.append(f"{folder}: {exc}")
        raise StoreError(f"could not write the finished record {record.get('key')!r} anywhere ({'; '.join(errors)}); it is: {payload.decode()}")

    def recover_pending(self) -> list[str]:
        """Write the records earlier runs could not write; returns their keys.

        Only files made for this very database (same store id) are taken;
        each is deleted once its record is in the database.
        """
        keys = []
        for folder in self.pending_dirs():
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob(f"{self.store_id}-*.json")):
                try:
                    doc = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue  # unreadable: leave it for a human
                if doc.get("store_id") != self.store_id or not isinstance(doc.get("record"), dict):
                    continue
                try:
                    if doc.get("table") == "evaluations":
                        self.add_evaluation(doc["record"])
                    else:
                        self.add(doc["record"])
                except (sqlite3.Error, OSError, ValueError):
                    continue  # still not writable: keep the file
                path.unlink(missing_ok=True)
                keys.append(str(doc["record"].get("key")))
            try:
                folder.rmdir()  # only when empty
            except OSError:
                pass
        return keys

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None

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
        con = sqlite3.connect(str(self.path), timeout=60, isolation_level=None)
        try:
            while not self._stop.wait(self.interval):
                try:
                    con.execute("UPDATE leases SET heartbeat = ? WHERE owner = ?", (time.time(), self.owner.id))
                except sqlite3.Error:
                    pass  # a busy or briefly unwritable database: try again next beat
        finally:
            con.close()

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=max(5.0, 2 * self.interval))
