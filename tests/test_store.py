"""The results store: whole trials, leases, nothing lost, nothing foreign touched."""

import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from helmholtz.errors import ForeignFileError, StoreError
from helmholtz.experiments import store as store_module
from helmholtz.experiments.store import APPLICATION_ID, COLUMNS, PENDING_DIR, SCHEMA_VERSION, Owner, ResultStore


def record(key="k1", **kw):
    r = {"key": key, "dataset": "cifar10", "model": "A", "quality": 20, "seed": 0, "recipe": "paper", "epochs": 1,
         "test_accuracy": 0.5, "accuracy_curve": [0.4, 0.5]}
    r.update(kw)
    return r


def folder_snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# ------------------------------------------------------------------ whole trials
def test_a_trial_is_stored_once_under_its_key(tmp_path):
    with ResultStore(tmp_path / "out") as s:
        assert s.add(record())
        assert not s.add(record(test_accuracy=0.9))  # same key: ignored, the first stays
        assert s.add(record("k2", quality=None, bitrate=32.0, bits_per_second=31000.0))
        assert len(s) == 2 and "k1" in s and s.finished_keys() == {"k1", "k2"}
    with ResultStore(tmp_path / "out", readonly=True) as s:
        recs = s.records()
    assert recs[0]["test_accuracy"] == 0.5 and recs[0]["accuracy_curve"] == [0.4, 0.5]
    assert recs[1]["quality"] is None and recs[1]["bitrate"] == 32.0
    assert set(recs[0]) == set(COLUMNS)


def test_records_with_unknown_or_missing_columns_are_refused(tmp_path):
    with ResultStore(tmp_path) as s:
        with pytest.raises(ValueError, match="unknown columns"):
            s.add(record(nonsense=1))
        with pytest.raises(ValueError, match="lacks required"):
            s.add({"key": "x"})
        with pytest.raises(TypeError, match="dict"):
            s.add([("key", "x")])
        assert len(s) == 0


def test_reading_a_missing_database_names_the_sweep_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="helmholtz sweep"):
        ResultStore(tmp_path / "nothing", create=False)
    with pytest.raises(FileNotFoundError):
        ResultStore(tmp_path / "nothing", readonly=True)
    assert not (tmp_path / "nothing").exists()


# ------------------------------------------------------------------ creation
def test_a_new_database_is_linked_into_place_whole(tmp_path):
    with ResultStore(tmp_path / "out") as s:
        assert s.meta()["application"] == "helmholtz" and s.meta()["schema_version"] == str(SCHEMA_VERSION)
        assert len(s.store_id) == 32
    con = sqlite3.connect(tmp_path / "out" / "results.sqlite")
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert con.execute("PRAGMA user_version").fetchone()[0] == 0
    con.close()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["results.sqlite"]  # no temporary file left


def test_a_failed_creation_leaves_no_file_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "_schema_sql", lambda: ["CREATE TABLE broken ("])
    with pytest.raises(StoreError, match="cannot create"):
        ResultStore(tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_concurrent_creators_share_one_database(tmp_path):
    code = "import sys; from helmholtz.experiments.store import ResultStore; ResultStore(sys.argv[1]).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "out")]) for _ in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    ids = {ResultStore(tmp_path / "out", readonly=True).store_id}
    assert len(ids) == 1 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["results.sqlite"]


# ------------------------------------------------------------------ foreign files are refused, unchanged
def _make_sqlite(path, *sql, user_version=0, app_id=0):
    con = sqlite3.connect(path)
    for q in sql:
        con.execute(q)
    if user_version:
        con.execute(f"PRAGMA user_version = {user_version}")
    if app_id:
        con.execute(f"PRAGMA application_id = {app_id}")
    con.commit()
    con.close()


def _helmholtz_db_then(path, *sql):
    ResultStore(path.parent).close()
    con = sqlite3.connect(path)
    for q in sql:
        con.execute(q)
    con.commit()
    con.close()


@pytest.mark.parametrize("kind", ["empty file", "not sqlite", "other schema", "views", "user_version", "application_id", "extra table", "trigger"])
def test_foreign_files_are_refused_byte_for_byte_unchanged(tmp_path, kind):
    db = tmp_path / "results.sqlite"
    if kind == "empty file":
        db.write_bytes(b"")
    elif kind == "not sqlite":
        db.write_bytes(b"this is not sqlite at all" * 100)
    elif kind == "other schema":
        _make_sqlite(db, "CREATE TABLE things (a)", "INSERT INTO things VALUES (1)")
    elif kind == "views":
        _make_sqlite(db, "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)", "CREATE TABLE trials (key TEXT)", "CREATE VIEW v AS SELECT * FROM trials")
    elif kind == "user_version":
        _helmholtz_db_then(db, "PRAGMA user_version = 7")
    elif kind == "application_id":
        _make_sqlite(db, "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)", app_id=1234)
    elif kind == "extra table":
        _helmholtz_db_then(db, "CREATE TABLE mine (x)")
    elif kind == "trigger":
        _helmholtz_db_then(db, "CREATE TRIGGER t AFTER INSERT ON trials BEGIN SELECT 1; END")
    before = folder_snapshot(tmp_path)
    with pytest.raises(ForeignFileError, match="choose another --out|left untouched"):
        ResultStore(tmp_path)
    with pytest.raises(ForeignFileError):
        ResultStore(tmp_path, readonly=True)
    assert folder_snapshot(tmp_path) == before  # the file is unchanged and nothing was added beside it


def test_a_database_of_another_schema_version_is_refused_unchanged(tmp_path):
    with ResultStore(tmp_path) as s:
        s.add(record())
    db = tmp_path / "results.sqlite"
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    con.commit()
    con.close()
    before = db.read_bytes()
    with pytest.raises(StoreError, match="schema version"):
        ResultStore(tmp_path)
    assert db.read_bytes() == before


def test_a_version_1_database_is_named_as_older_helmholtz(tmp_path):
    db = tmp_path / "results.sqlite"
    _make_sqlite(db, "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)", "CREATE TABLE trials (id INTEGER PRIMARY KEY, key TEXT)",
                 "INSERT INTO meta VALUES ('application', 'helmholtz')", "INSERT INTO meta VALUES ('schema_version', '1')")
    before = db.read_bytes()
    with pytest.raises(StoreError, match="older helmholtz"):
        ResultStore(tmp_path)
    assert db.read_bytes() == before


def test_an_unwritable_store_is_refused_before_any_work(tmp_path, monkeypatch):
    ResultStore(tmp_path).close()
    real = sqlite3.connect

    class ReadOnlyConnection:  # as root, chmod cannot take write permission away: refuse writes at the SQL level
        def __init__(self, *a, **k):
            self._c = real(*a, **k)

        def execute(self, sql, *args):
            if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
                raise sqlite3.OperationalError("attempt to write a readonly database")
            return self._c.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self._c, name)

    monkeypatch.setattr(store_module.sqlite3, "connect", ReadOnlyConnection)
    with pytest.raises(StoreError, match="cannot write the results database"):
        ResultStore(tmp_path)


# ------------------------------------------------------------------ leases
def test_a_claimed_trial_is_not_claimed_by_another_owner(tmp_path):
    a, b = Owner(), Owner()
    with ResultStore(tmp_path) as s:
        assert s.claim(["k1", "k2"], a, stale_after=60) == "k1"
        assert s.claim(["k1", "k2"], b, stale_after=60) == "k2"
        assert s.claim(["k1", "k2"], b, stale_after=60) is None
        assert [lease["key"] for lease in s.blockers(["k1", "k2"], b, stale_after=60)] == ["k1"]
        assert s.add(record("k1"), a)
        assert s.claim(["k1"], b, stale_after=60) is None  # finished
        assert {lease["key"] for lease in s.leases()} == {"k2"}  # storing the trial dropped its lease


def test_a_stale_lease_is_taken_over(tmp_path):
    a = Owner(pid=1, host="another-host")  # not this host: only the heartbeat tells
    b = Owner()
    with ResultStore(tmp_path) as s:
        assert s.claim(["k1"], a, stale_after=60) == "k1"
        assert s.claim(["k1"], b, stale_after=60) is None
        s.conn.execute("UPDATE leases SET heartbeat = heartbeat - 120")
        assert s.claim(["k1"], b, stale_after=60) == "k1"
        assert s.leases()[0]["owner"] == b.id


def test_a_lease_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    ghost = Owner(pid=int(dead))
    with ResultStore(tmp_path) as s:
        assert s.claim(["k1"], ghost, stale_after=3600) == "k1"
        assert s.claim(["k1"], Owner(), stale_after=3600) == "k1"


def test_a_failed_trial_is_skipped_by_its_run_and_retried_by_the_next(tmp_path):
    a, b = Owner(run="r1"), Owner(run="r1")
    with ResultStore(tmp_path) as s:
        assert s.claim(["k1"], a, stale_after=60) == "k1"
        s.mark_failed("k1", a, "diverged")
        assert s.claim(["k1"], b, stale_after=60) is None and s.blockers(["k1"], b, stale_after=60) == []
        s.release_run("r1")
        assert s.claim(["k1"], Owner(run="r2"), stale_after=60) == "k1"


def test_heartbeats_keep_a_lease_fresh(tmp_path):
    a = Owner(pid=1, host="another-host")
    with ResultStore(tmp_path) as s, store_module.Heartbeat(s.path, a, 0.05):
        s.claim(["k1"], a, stale_after=60)
        s.conn.execute("UPDATE leases SET heartbeat = heartbeat - 120")
        time.sleep(0.5)
        assert time.time() - s.leases()[0]["heartbeat"] < 5


# ------------------------------------------------------------------ nothing finished is lost
def test_a_record_that_cannot_be_written_is_kept_beside_the_store_and_recorded_next_time(tmp_path, monkeypatch):
    with ResultStore(tmp_path) as s:
        monkeypatch.setattr(ResultStore, "add", lambda self, rec, owner=None: (_ for _ in ()).throw(sqlite3.OperationalError("database or disk is full")))
        stored, path = s.add_or_keep(record("k9"))
        assert not stored and path.parent == tmp_path / PENDING_DIR
        assert json.loads(path.read_text())["record"]["key"] == "k9"
        monkeypatch.undo()
        assert len(s) == 0
    with ResultStore(tmp_path) as s:
        assert s.recovered == ["k9"] and s.finished_keys() == {"k9"}
    assert not (tmp_path / PENDING_DIR).exists()


def test_a_record_goes_to_the_user_cache_when_the_store_folder_is_unwritable(tmp_path, monkeypatch):
    monkeypatch.setenv("HELMHOLTZ_CACHE_DIR", str(tmp_path / "cache"))
    blocker = tmp_path / "out" / PENDING_DIR
    with ResultStore(tmp_path / "out") as s:
        blocker.write_text("a file where the pending folder would go")  # mkdir fails there
        path = s.save_pending(record("k3"))
        assert str(path).startswith(str(tmp_path / "cache" / "pending"))
        blocker.unlink()
    with ResultStore(tmp_path / "out") as s:
        assert s.recovered == ["k3"]


def test_pending_records_of_another_database_are_left_alone(tmp_path):
    with ResultStore(tmp_path / "a") as a:
        path = a.save_pending(record("k1"))
    os.makedirs(tmp_path / "b" / PENDING_DIR)
    foreign = tmp_path / "b" / PENDING_DIR / path.name
    foreign.write_bytes(path.read_bytes())
    with ResultStore(tmp_path / "b") as b:
        assert b.recovered == [] and len(b) == 0
    assert foreign.exists()


@pytest.mark.parametrize("bad, error", [({"seed": 2**64}, "OverflowError"), ({"model": "A\udcff"}, "UnicodeEncodeError")])
def test_a_value_the_database_cannot_hold_sends_the_finished_record_to_pending_not_to_a_traceback(tmp_path, bad, error):
    with ResultStore(tmp_path) as s:
        stored, path = s.add_or_keep(record("k1", **bad), Owner())
        assert not stored and path.parent == tmp_path / PENDING_DIR
        assert json.loads(path.read_text())["record"]["key"] == "k1" and len(s) == 0
    with ResultStore(tmp_path) as s:  # the next run cannot record it either: it stays, listed, and the store still opens
        assert s.recovered == [] and [p for p, _ in s.unrecovered] == [path] and error in s.unrecovered[0][1]
    assert path.exists()


@pytest.mark.parametrize("out", ["", "   ", "out-\udcff\udcfe"], ids=["empty", "blank", "not-utf8"])
def test_an_output_folder_that_cannot_be_stored_is_refused_before_anything_is_created(tmp_path, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="out must"):
        ResultStore(out)
    assert list(tmp_path.iterdir()) == []


def test_output_folders_helmholtz_may_not_create_are_named_with_the_reason(tmp_path):
    from helmholtz.experiments.store import check_output_folder

    (tmp_path / "file").write_text("x")
    for out, why in [("/", "not the root folder"), (tmp_path / "file", "is an existing file"), (tmp_path / "file" / "sub", "which is a file"),
                     (tmp_path / ("x" * 300), "name of 300 bytes"), (tmp_path / ("x" * 200) / ("y" * 200) / ("z" * 200) / ("w" * 200) / ("v" * 200) / ("u" * 200)
                                                                       / ("t" * 200) / ("s" * 200) / ("r" * 200) / ("q" * 200) / ("p" * 200) / ("o" * 200)
                                                                       / ("n" * 200) / ("m" * 200) / ("l" * 200) / ("k" * 200) / ("j" * 200) / ("i" * 200)
                                                                       / ("h" * 200) / ("g" * 200) / ("f" * 200), "path of")]:
        with pytest.raises(ValueError, match=why):
            check_output_folder(out, "out")
    for out in (5, True, None, ["a"]):
        with pytest.raises(TypeError, match="out must be a path"):
            check_output_folder(out, "out")
    assert check_output_folder(tmp_path / "new" / "deeper", "out") == tmp_path / "new" / "deeper"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # checking creates nothing


# ------------------------------------------------------------------ files of rows: only the row's writer commits them
def test_a_rows_files_are_written_under_names_of_their_own_and_dropped_when_the_key_is_already_stored(tmp_path):
    a, b = Owner(), Owner()
    with ResultStore(tmp_path) as s:
        assert s.add_or_keep(record("k1", weights="models/k1-a.pt"), a, files={"weights": b"first"}) == (True, None)
        late = s.add_or_keep(record("k1", weights="models/k1-b.pt"), b, files={"weights": b"late"})
        assert late == (False, None)
        assert s.record("k1")["weights"] == "models/k1-a.pt"
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["k1-a.pt"]  # the late file is gone, the stored one untouched
    assert (tmp_path / "models" / "k1-a.pt").read_bytes() == b"first"


def test_a_rows_file_is_never_written_over_an_existing_file(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "taken.pt").write_bytes(b"someone else's")
    with ResultStore(tmp_path) as s:
        stored, path = s.add_or_keep(record("k1", weights="models/taken.pt"), files={"weights": b"mine"})
        assert not stored and path is not None  # kept for the next run, the existing file untouched
        with pytest.raises(ValueError, match="relative path inside"):
            s.add_or_keep(record("k2", weights="../escape.pt"), files={"weights": b"x"})
    assert (tmp_path / "models" / "taken.pt").read_bytes() == b"someone else's"
    assert not (tmp_path.parent / "escape.pt").exists()


def test_a_pending_record_whose_key_was_stored_meanwhile_is_dropped_with_its_files(tmp_path, monkeypatch):
    monkeypatch.setenv("HELMHOLTZ_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    with ResultStore(out) as s:
        s.save_pending(record("k1", weights="models/k1-late.pt", weights_sha256=__import__("hashlib").sha256(b"late").hexdigest()),
                       files={"weights": b"late"})
        s.add_or_keep(record("k1", weights="models/k1-first.pt"), files={"weights": b"first"})
    with ResultStore(out) as s:
        assert s.recovered == ["k1"] and s.record("k1")["weights"] == "models/k1-first.pt"
    assert sorted(p.name for p in (out / "models").iterdir()) == ["k1-first.pt"]
    assert not (out / PENDING_DIR).exists()


def test_a_staged_file_that_does_not_match_its_record_is_left_for_a_human(tmp_path):
    with ResultStore(tmp_path) as s:
        path = s.save_pending(record("k1", weights="models/k1-x.pt", weights_sha256="0" * 64), files={"weights": b"bytes"})
    with ResultStore(tmp_path) as s:
        assert s.recovered == [] and "SHA-256" in s.unrecovered[0][1] and len(s) == 0
    assert path.exists() and not (tmp_path / "models" / "k1-x.pt").exists()


def test_a_record_with_no_room_for_its_files_anywhere_is_kept_without_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HELMHOLTZ_CACHE_DIR", str(tmp_path / "cache"))
    real = store_module.write_new_file

    def no_room(path, data):
        raise OSError(28, "No space left on device", str(path))

    with ResultStore(tmp_path / "out") as s:
        monkeypatch.setattr(store_module, "write_new_file", no_room)
        rec = record("k1", weights="models/k1-x.pt", weights_sha256="ab" * 32)
        stored, path = s.add_or_keep(rec, files={"weights": b"bytes"})
        monkeypatch.setattr(store_module, "write_new_file", real)
    doc = json.loads(path.read_text())
    assert not stored and doc["record"]["weights"] is None and doc["record"]["weights_sha256"] is None and doc["files"] == {}
    with ResultStore(tmp_path / "out") as s:
        assert s.recovered == ["k1"] and s.record("k1")["weights"] is None


def test_a_heartbeat_that_cannot_reach_the_database_keeps_trying(tmp_path):
    a = Owner(pid=1, host="another-host")
    out = tmp_path / "later"
    beat = store_module.Heartbeat(out / "results.sqlite", a, 0.05)
    with beat:  # the folder does not exist yet: every beat fails, and the thread goes on
        time.sleep(0.3)
        assert beat._thread.is_alive()
        with ResultStore(out) as s:
            s.claim(["k1"], a, stale_after=60)
            s.conn.execute("UPDATE leases SET heartbeat = heartbeat - 120")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and time.time() - s.leases()[0]["heartbeat"] > 60:
                time.sleep(0.05)
            assert time.time() - s.leases()[0]["heartbeat"] < 60
