import sqlite3

import pytest

from helmholtz.errors import StoreError
from helmholtz.experiments.store import COLUMNS, SCHEMA_VERSION, ResultStore


def record(key="k1", **kw):
    r = {"key": key, "dataset": "cifar10", "model": "A", "quality": 20, "seed": 0, "recipe": "paper", "epochs": 1,
         "test_accuracy": 0.5, "accuracy_curve": [0.4, 0.5]}
    r.update(kw)
    return r


def test_roundtrip_and_unique_key(tmp_path):
    with ResultStore(tmp_path / "out") as s:
        assert s.add(record())
        assert not s.add(record(test_accuracy=0.9))  # same key: ignored, the first stays
        assert s.add(record("k2", quality=None, bitrate=32.0, bits_per_second=31000.0))
        assert len(s) == 2 and "k1" in s and s.finished_keys() == {"k1", "k2"}
    with ResultStore(tmp_path / "out", create=False) as s:
        recs = s.records()
    assert recs[0]["test_accuracy"] == 0.5 and recs[0]["accuracy_curve"] == [0.4, 0.5]
    assert recs[1]["quality"] is None and recs[1]["bitrate"] == 32.0
    assert set(recs[0]) == set(COLUMNS)


def test_fill_only_null(tmp_path):
    with ResultStore(tmp_path) as s:
        s.add(record(bpp=None))
        s.add(record("k2", bpp=1.5))
        assert s.fill("k1", bpp=0.75)
        assert not s.fill("k2", bpp=9.0)
        assert [r["bpp"] for r in s.records()] == [0.75, 1.5]
        assert s.rows_missing("bpp") == []


def test_bad_records(tmp_path):
    with ResultStore(tmp_path) as s:
        with pytest.raises(ValueError, match="unknown columns"):
            s.add(record(nonsense=1))
        with pytest.raises(ValueError, match="lacks required"):
            s.add({"key": "x"})
        assert len(s) == 0


def test_missing_db_without_create(tmp_path):
    with pytest.raises(FileNotFoundError, match="sweep"):
        ResultStore(tmp_path / "nothing", create=False)


def test_incompatible_version_is_refused_and_kept(tmp_path):
    with ResultStore(tmp_path) as s:
        s.add(record())
    path = tmp_path / "results.sqlite"
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    con.commit()
    con.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="schema version"):
        ResultStore(tmp_path)
    assert path.read_bytes() == before


def test_foreign_files_are_refused(tmp_path):
    (tmp_path / "results.sqlite").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a helmholtz results database"):
        ResultStore(tmp_path)
    other = tmp_path / "o"
    other.mkdir()
    con = sqlite3.connect(other / "results.sqlite")
    con.execute("CREATE TABLE things (a)")
    con.execute("INSERT INTO things VALUES (1)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="not a helmholtz results database"):
        ResultStore(other)
    con = sqlite3.connect(other / "results.sqlite")
    assert con.execute("SELECT a FROM things").fetchall() == [(1,)]
    con.close()
