"""The results database of a sweep: one SQLite file, one row per finished trial.

A row is written in a single transaction when its trial ends, under a unique
key (data set, model, compression level, seed, recipe, epochs, subsets), so a
sweep killed at any moment and run again skips what is finished and neither
loses nor duplicates a trial. The schema carries a version; a database from
an incompatible version is refused with a clear error and left untouched.

The compression level is generic: ``quality`` (JPEG, 1..100) for images,
``bitrate`` (kbps) for audio, either may be NULL. Measured rates are
``bpp`` (bits per pixel) and ``bits_per_second``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable

from ..errors import StoreError

__all__ = ["ResultStore", "StoreError", "SCHEMA_VERSION", "DB_NAME", "COLUMNS", "db_path"]

SCHEMA_VERSION = 1
DB_NAME = "results.sqlite"
_APP = "helmholtz"

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
    "images_per_s": "REAL",
    "device": "TEXT",
    "host": "TEXT",
    "helmholtz_version": "TEXT",
    "torch_version": "TEXT",
    "finished_at": "TEXT",
    "extra": "TEXT",
}
_JSON_COLUMNS = ("accuracy_curve", "loss_curve", "extra")


def db_path(out: str | os.PathLike) -> Path:
    """The database file for an output folder ``out`` (or ``out`` itself if it is a file)."""
    p = Path(out)
    return p if p.is_file() or p.suffix in (".sqlite", ".db") else p / DB_NAME


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

    Raises
    ------
    StoreError
        If the file is not a SQLite database or was written by an
        incompatible schema version. The file is not modified.
    """

    def __init__(self, out: str | os.PathLike, *, create: bool = True) -> None:
        if not isinstance(out, (str, os.PathLike)):
            raise TypeError(f"out must be a path; got {type(out).__name__}")
        self.path = db_path(out)
        exists = self.path.is_file()
        if not exists:
            if not create:
                raise FileNotFoundError(f"no results database at {str(self.path)!r}; run `helmholtz sweep --out {out}` first")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=60, isolation_level=None)
            self._check_or_create(exists)
        except sqlite3.DatabaseError as exc:
            self._close_quietly()
            raise StoreError(f"{str(self.path)!r} is not a helmholtz results database ({exc}); move it away or choose another --out") from exc

    # -- schema -------------------------------------------------------------------------------
    def _check_or_create(self, exists: bool) -> None:
        c = self._conn
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            c.execute("BEGIN IMMEDIATE")
            try:
                tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                if not tables:  # still empty: no one else created it meanwhile
                    c.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
                    c.executemany(
                        "INSERT INTO meta VALUES (?, ?)",
                        [("application", _APP), ("schema_version", str(SCHEMA_VERSION)), ("created_at", _now())],
                    )
                    cols = ",\n  ".join(f"{k} {v}" for k, v in COLUMNS.items())
                    c.execute(f"CREATE TABLE trials (\n  id INTEGER PRIMARY KEY,\n  {cols}\n)")
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" not in tables or "trials" not in tables:
            raise StoreError(f"{str(self.path)!r} is a SQLite file but not a helmholtz results database (tables: {sorted(tables)}); choose another --out")
        meta = dict(c.execute("SELECT name, value FROM meta").fetchall())
        if meta.get("application") != _APP:
            raise StoreError(f"{str(self.path)!r} was not written by helmholtz; choose another --out")
        version = meta.get("schema_version")
        if version != str(SCHEMA_VERSION):
            raise StoreError(
                f"{str(self.path)!r} has results schema version {version}, this helmholtz reads version {SCHEMA_VERSION}; "
                f"use the helmholtz version that wrote it, or start a new --out (the file was left unchanged)"
            )
        have = {r[1] for r in c.execute("PRAGMA table_info(trials)")}
        missing = [k for k in COLUMNS if k not in have]
        if missing:
            raise StoreError(f"{str(self.path)!r} lacks columns {missing}; it is damaged or from another version (left unchanged)")

    # -- reading ------------------------------------------------------------------------------
    def finished_keys(self) -> set[str]:
        """Keys of every finished trial."""
        return {r[0] for r in self._conn.execute("SELECT key FROM trials")}

    def __contains__(self, key: object) -> bool:
        return self._conn.execute("SELECT 1 FROM trials WHERE key = ?", (key,)).fetchone() is not None

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0])

    def records(self) -> list[dict[str, Any]]:
        """Every trial as a dict (curves decoded from JSON), in insertion order."""
        cur = self._conn.execute(f"SELECT {', '.join(COLUMNS)} FROM trials ORDER BY id")
        out = []
        for row in cur.fetchall():
            rec = dict(zip(COLUMNS, row))
            for k in _JSON_COLUMNS:
                rec[k] = json.loads(rec[k]) if rec[k] else None
            out.append(rec)
        return out

    # -- writing ------------------------------------------------------------------------------
    def add(self, record: dict[str, Any]) -> bool:
        """Insert one finished trial in one transaction.

        Returns False (and changes nothing) if a trial with the same key is
        already stored.

        Raises
        ------
        ValueError
            If ``record`` has unknown columns or lacks required ones.
        """
        if not isinstance(record, dict):
            raise TypeError(f"record must be a dict; got {type(record).__name__}")
        unknown = set(record) - set(COLUMNS)
        if unknown:
            raise ValueError(f"record has unknown columns {sorted(unknown)}")
        required = [k for k, t in COLUMNS.items() if "NOT NULL" in t and record.get(k) is None]
        if required:
            raise ValueError(f"record lacks required columns {required}")
        row = dict(record)
        row.setdefault("finished_at", _now())
        for k in _JSON_COLUMNS:
            if row.get(k) is not None and not isinstance(row[k], str):
                row[k] = json.dumps(row[k])
        names = list(row)
        sql = f"INSERT OR IGNORE INTO trials ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            n = c.execute(sql, [row[k] for k in names]).rowcount
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return n == 1

    def fill(self, key: str, **values: Any) -> bool:
        """Set columns of a stored trial that are still NULL (e.g. ``bpp`` once it can be measured)."""
        bad = set(values) - set(COLUMNS) | ({"key"} & set(values))
        if bad:
            raise ValueError(f"cannot fill columns {sorted(bad)}")
        changed = False
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            for col, value in values.items():
                if value is not None:
                    changed |= c.execute(f"UPDATE trials SET {col} = ? WHERE key = ? AND {col} IS NULL", (value, key)).rowcount > 0
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return changed

    def missing_rate(self, key: str) -> bool:
        """Whether the stored trial ``key`` has neither ``bpp`` nor ``bits_per_second`` yet."""
        row = self._conn.execute("SELECT bpp, bits_per_second FROM trials WHERE key = ?", (key,)).fetchone()
        return row is not None and row[0] is None and row[1] is None

    def rows_missing(self, column: str) -> list[dict[str, Any]]:
        """Stored trials whose ``column`` is NULL."""
        if column not in COLUMNS:
            raise ValueError(f"column must be one of {list(COLUMNS)}; got {column!r}")
        return [r for r in self.records() if r[column] is None]

    def add_many(self, records: Iterable[dict[str, Any]]) -> int:
        """Insert several trials (each in its own transaction); returns how many were new."""
        return sum(self.add(r) for r in records)

    # -- lifecycle ----------------------------------------------------------------------------
    def _close_quietly(self) -> None:
        conn = getattr(self, "_conn", None)
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass
            self._conn = None  # type: ignore[assignment]

    def close(self) -> None:
        """Close the connection."""
        self._close_quietly()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path)!r})"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
