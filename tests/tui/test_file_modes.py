"""Every file that holds the user's words is private: the chat database with its side files,
and the log; the directories Breeze makes for them too."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat

import pytest

from breeze.tui.logs import setup_logging
from breeze.tui.store import Store


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask():
    """The umask most users have, under which a plain open() makes files others can read."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def root_logger():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_new_chat_database_and_its_directories_are_private(tmp_path):
    path = tmp_path / "share" / "breeze" / "sessions.sqlite3"
    store = Store(path)
    try:
        store.add(store.new_session(), "user", "something personal")
        wal, shm = (path.with_name(path.name + s) for s in ("-wal", "-shm"))
        assert wal.exists() and shm.exists()
        assert {p.name: mode(p) for p in (path, wal, shm)} == {
            p.name: 0o600 for p in (path, wal, shm)}
        assert mode(path.with_name(path.name + ".lock")) == 0o600
        assert mode(tmp_path / "share") == mode(tmp_path / "share" / "breeze") == 0o700
    finally:
        store.close()


def test_a_database_an_older_breeze_left_readable_is_made_private(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    old = sqlite3.connect(path)  # an older version: no mode given, so 0644 under this umask
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE sessions (id INTEGER PRIMARY KEY, title TEXT NOT NULL, "
                "created REAL NOT NULL, updated REAL NOT NULL)")
    old.execute("INSERT INTO sessions VALUES (1, 'secret', 0, 0)")
    old.commit()
    wal, shm = (path.with_name(path.name + s) for s in ("-wal", "-shm"))
    assert mode(path) == mode(wal) == mode(shm) == 0o644
    try:
        store = Store(path)
        assert store.title(1) == "secret"
        assert mode(path) == mode(wal) == mode(shm) == 0o600
        store.close()
    finally:
        old.close()


def test_a_broken_database_moved_aside_is_private_too(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    path.write_bytes(b"not a database, but maybe the user's words")
    assert mode(path) == 0o644
    Store(path).close()
    [moved] = tmp_path.glob("sessions.sqlite3.broken-*")
    assert mode(moved) == 0o600 and mode(path) == 0o600


def test_the_log_and_its_directories_are_private(tmp_path, monkeypatch, root_logger):
    monkeypatch.setenv("BREEZE_LOG_DIR", str(tmp_path / "state" / "breeze" / "log"))
    path = setup_logging()
    logging.getLogger("breeze.test").warning("the user said: something personal")
    assert "something personal" in path.read_text()
    assert mode(path) == 0o600
    assert {mode(d) for d in (path.parent, path.parent.parent, tmp_path / "state")} == {0o700}

    [handler] = root_logger.handlers
    handler.doRollover()
    logging.getLogger("breeze.test").warning("after the rollover")
    assert mode(path) == mode(path.with_name("breeze.log.1")) == 0o600
    assert "after the rollover" in path.read_text()


def test_logs_an_older_breeze_left_readable_are_made_private(tmp_path, monkeypatch,
                                                             root_logger):
    monkeypatch.setenv("BREEZE_LOG_DIR", str(tmp_path))
    old = [tmp_path / name for name in ("breeze.log", "breeze.log.1", "breeze.log.2")]
    for file in old:
        file.write_text("old words\n")
    assert {mode(f) for f in old} == {0o644}
    setup_logging()
    assert {mode(f) for f in old} == {0o600}
