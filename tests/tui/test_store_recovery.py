"""The store opens whatever it finds: a damaged or foreign database is moved aside (never
deleted) with a message for the user, and a reply another running Breeze is still writing is
not taken for one cut short."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from breeze.engine import BreezeError, Engine, EngineSettings
from breeze.runners import builtin_registry
from breeze.tui.app import create_app
from breeze.tui.store import Store

GARBAGE = b"these are not the chats you are looking for\n" * 200


def broken_files(path) -> list:
    return sorted(p for p in path.parent.iterdir() if ".broken-" in p.name)


def test_a_file_that_is_no_database_is_moved_aside_and_a_new_one_started(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    path.write_bytes(GARBAGE)
    store = Store(path)
    try:
        [moved] = broken_files(path)
        assert moved.name.startswith("sessions.sqlite3.broken-")
        assert moved.read_bytes() == GARBAGE
        [problem] = store.problems
        assert "is not a SQLite database" in problem and str(moved) in problem
        session = store.new_session("fresh")
        store.add(session, "user", "hello")
        assert [s.title for s in store.sessions()] == ["fresh"]
    finally:
        store.close()
    reopened = Store(path)
    assert reopened.problems == [] and len(broken_files(path)) == 1
    reopened.close()


@pytest.mark.parametrize("quick_check", [True, False], ids=["checked", "too-big-to-check"])
def test_a_database_cut_short_mid_page_is_moved_aside(tmp_path, monkeypatch, quick_check):
    import breeze.tui.store as store_module

    if not quick_check:  # the first reads find the damage too
        monkeypatch.setattr(store_module, "QUICK_CHECK_MAX_BYTES", 0)
    path = tmp_path / "sessions.sqlite3"
    store = Store(path)
    session = store.new_session("long chat")
    for n in range(300):
        store.add(session, "user", f"message {n} " + "words " * 80)
    store.close()
    page_size = 4096
    size = path.stat().st_size
    assert size > 20 * page_size
    with path.open("r+b") as file:
        file.truncate(size // 2 + page_size // 3)
    cut = path.read_bytes()

    store = Store(path)
    try:
        [moved] = broken_files(path)
        assert moved.read_bytes() == cut
        [problem] = store.problems
        assert "is damaged" in problem and ".recover" in problem
        assert store.sessions() == []
    finally:
        store.close()


def test_the_log_and_index_of_a_broken_database_go_with_it(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    path.write_bytes(GARBAGE)
    (tmp_path / "sessions.sqlite3-wal").write_bytes(b"old log")
    (tmp_path / "sessions.sqlite3-shm").write_bytes(b"old index")
    store = Store(path)
    store.close()
    moved = [p for p in broken_files(path) if not p.name.endswith(("-wal", "-shm"))]
    [moved] = moved
    assert moved.with_name(moved.name + "-wal").read_bytes() == b"old log"
    assert moved.with_name(moved.name + "-shm").read_bytes() == b"old index"


def test_an_empty_database_beside_a_write_ahead_log_is_moved_aside_with_it(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    path.touch()
    (tmp_path / "sessions.sqlite3-wal").write_bytes(b"frames of the user's words")
    store = Store(path)
    store.close()
    [moved, wal] = broken_files(path)
    assert wal.name == moved.name + "-wal"
    assert wal.read_bytes() == b"frames of the user's words"
    assert "write-ahead log" in store.problems[0]


def test_a_database_of_another_program_is_moved_aside(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT)")
    other.execute("INSERT INTO moz_places(url) VALUES ('https://example.org')")
    other.commit()
    other.close()
    store = Store(path)
    try:
        [moved] = broken_files(path)
        assert "another program's tables (moz_places)" in store.problems[0]
        assert sqlite3.connect(moved).execute("SELECT url FROM moz_places").fetchall() == [
            ("https://example.org",)
        ]
        assert store.sessions() == []
    finally:
        store.close()


def test_a_messages_table_that_is_not_breezes_is_moved_aside(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, body TEXT)")
    other.commit()
    other.close()
    store = Store(path)
    try:
        assert len(broken_files(path)) == 1
        assert "has a messages table without" in store.problems[0]
        store.add(store.new_session(), "user", "hello")  # the new database has the right table
    finally:
        store.close()


def test_a_directory_in_place_of_the_database_is_moved_aside(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    path.mkdir()
    (path / "keep.txt").write_text("mine")
    store = Store(path)
    try:
        [moved] = broken_files(path)
        assert (moved / "keep.txt").read_text() == "mine"
        assert "is a directory" in store.problems[0]
        assert path.is_file()
    finally:
        store.close()


def test_an_empty_file_is_simply_a_new_database(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    path.touch()
    store = Store(path)
    try:
        assert store.problems == [] and broken_files(path) == []
        assert store.sessions() == []
    finally:
        store.close()


def test_two_broken_databases_in_one_second_are_both_kept(tmp_path, monkeypatch):
    import breeze.tui.store as store_module

    monkeypatch.setattr(store_module.time, "strftime", lambda fmt: "20250101-120000")
    path = tmp_path / "sessions.sqlite3"
    for n in range(2):
        path.write_bytes(GARBAGE + bytes([n]))
        Store(path).close()
    moved = broken_files(path)
    assert [p.name for p in moved] == ["sessions.sqlite3.broken-20250101-120000",
                                       "sessions.sqlite3.broken-20250101-120000-2"]
    assert {p.read_bytes()[-1] for p in moved} == {0, 1}


def test_a_database_of_an_older_breeze_keeps_its_chats(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE sessions (id INTEGER PRIMARY KEY, title TEXT NOT NULL,
                               created REAL NOT NULL, updated REAL NOT NULL);
        CREATE TABLE messages (id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL,
            role TEXT NOT NULL, content TEXT NOT NULL, state TEXT NOT NULL,
            error TEXT, metadata TEXT, created REAL NOT NULL);
        INSERT INTO sessions VALUES (1, 'old chat', 0, 0);
        INSERT INTO messages VALUES (1, 1, 'user', 'old question', 'complete', NULL, NULL, 0);
        INSERT INTO messages VALUES (2, 1, 'assistant', 'half', 'streaming', NULL, NULL, 0);
    """)
    old.close()
    store = Store(path)
    try:
        assert store.problems == [] and broken_files(path) == []
        assert store.interrupted == 1
        assert [(m.content, m.state) for m in store.messages(1)] == [
            ("old question", "complete"), ("half", "interrupted")]
    finally:
        store.close()


def test_a_database_locked_by_another_program_is_reported_not_moved(tmp_path, monkeypatch):
    import breeze.tui.store as store_module

    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.05)
    path = tmp_path / "sessions.sqlite3"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE sessions (id INTEGER PRIMARY KEY, title TEXT NOT NULL, "
                  "created REAL NOT NULL, updated REAL NOT NULL)")
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(BreezeError) as raised:
            Store(path)
        assert raised.value.error.code == "E501"
        assert "locked" in raised.value.error.message
        assert broken_files(path) == [] and path.stat().st_size > 0
    finally:
        other.close()
    Store(path).close()  # and opens once the other program is done


@pytest.fixture
def app_env(tmp_path, monkeypatch):
    monkeypatch.setenv("BREEZE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_DOCUMENTS_DIR", str(tmp_path / "docs"))
    monkeypatch.setenv("BREEZE_CONFIG_DIR", str(tmp_path / "config"))
    (tmp_path / "data").mkdir()
    return tmp_path / "data" / "sessions.sqlite3"


async def test_the_app_starts_over_a_broken_database(app_env):
    app_env.write_bytes(GARBAGE)
    app = create_app(Engine(builtin_registry(), EngineSettings()))
    try:
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.pause()
            assert app.is_running and app.screen is app.chat
            assert "is not a SQLite database" in app.store.problems[0]
    finally:
        app.store.close()
    assert broken_files(app_env)[0].read_bytes() == GARBAGE


async def test_the_app_tells_where_the_broken_database_went(app_env):
    app_env.write_bytes(GARBAGE)
    app = create_app(Engine(builtin_registry(), EngineSettings()))
    try:
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.pause()
            shown = [n.message for n in app._notifications]
            assert app.store.problems and app.store.problems[0] in shown
    finally:
        app.store.close()


# -- replies being written by another process ------------------------------------------------

CHILD = """
import sys
from breeze.tui.store import Store

store = Store(sys.argv[1])
if sys.argv[2] == "write":
    session = store.new_session()
    store.add(session, "user", "question")
    store.add(session, "assistant", "half an ans", "streaming")
    print(session, flush=True)
    sys.stdin.readline()
else:
    print(store.interrupted, flush=True)
"""


@pytest.fixture
def writer(tmp_path):
    """Another Breeze writing a reply into tmp_path/s.sqlite3, alive until killed."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "s.sqlite3"), "write"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.strip().isdigit(), f"the writer did not start (exit {proc.poll()})"
    proc.session = int(line)
    yield proc
    proc.kill()
    proc.wait()
    proc.stdin.close()
    proc.stdout.close()


def interrupted_seen_by_another_process(path) -> int:
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), "open"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_a_reply_another_breeze_is_writing_is_left_alone_until_it_is_killed(tmp_path, writer):
    path = tmp_path / "s.sqlite3"
    second = Store(path)
    assert second.interrupted == 0
    assert [m.state for m in second.messages(writer.session)] == ["complete", "streaming"]
    second.close()

    writer.kill()  # kill -9: the writer cannot mark anything
    writer.wait()
    after = Store(path)
    try:
        assert after.interrupted == 1
        [_, reply] = after.messages(writer.session)
        assert (reply.state, reply.content) == ("interrupted", "half an ans")
    finally:
        after.close()


def test_a_reply_is_left_alone_while_one_of_its_process_stores_is_open(tmp_path):
    path = tmp_path / "s.sqlite3"
    first, second = Store(path), Store(path)
    session = second.new_session()
    second.add(session, "assistant", "half", "streaming")
    first.close()  # must not let go of the lock `second` still relies on
    try:
        assert interrupted_seen_by_another_process(path) == 0
    finally:
        second.close()
    assert interrupted_seen_by_another_process(path) == 1  # no store open: nobody writes it


def test_a_reply_whose_pid_now_belongs_to_another_program_is_marked(tmp_path):
    path = tmp_path / "s.sqlite3"
    store = Store(path)
    session = store.new_session()
    message = store.add(session, "assistant", "half", "streaming")
    store.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE messages SET writer=? WHERE id=?", (os.getppid(), message))
    db.commit()
    db.close()
    assert interrupted_seen_by_another_process(path) == 1


async def test_a_second_app_does_not_call_the_first_ones_live_reply_cut_short(
    tmp_path, writer, monkeypatch
):
    monkeypatch.setenv("XDG_DOCUMENTS_DIR", str(tmp_path / "docs"))
    monkeypatch.setenv("BREEZE_CONFIG_DIR", str(tmp_path / "config"))
    store = Store(tmp_path / "s.sqlite3")
    app = create_app(Engine(builtin_registry(), EngineSettings()), store)
    try:
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.pause()
            assert not [n for n in app._notifications if "cut short" in n.message]
        assert store.messages(writer.session)[-1].state == "streaming"
    finally:
        store.close()
