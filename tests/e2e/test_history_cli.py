"""`breeze history search`: a word from an old chat found on the command line, in a database
made before the search index existed."""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from breeze.tui.store import Store

BREEZE = str(Path(sys.executable).with_name("breeze"))

# The tables of a Breeze from before the search index and the voice marks.
OLD_SCHEMA = """
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY, title TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    role TEXT NOT NULL, content TEXT NOT NULL, state TEXT NOT NULL,
    error TEXT, metadata TEXT, created REAL NOT NULL
);
"""


def database(env) -> Path:
    return Path(env["XDG_DATA_HOME"]) / "breeze" / "sessions.sqlite3"


def breeze(env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BREEZE, *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def old_chats(env) -> Path:
    path = database(env)
    path.parent.mkdir(parents=True)
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.execute("INSERT INTO sessions VALUES (1, 'Holiday plans', 1700000000, 1700000100)")
    db.execute("INSERT INTO sessions VALUES (2, 'Cooking', 1700000200, 1700000300)")
    rows = [
        (1, "user", "Where should we go for the holidays?", 1700000000),
        (1, "assistant", "Zanzibar has warm beaches and spice markets.", 1700000001),
        (2, "user", "How long do I boil an egg?", 1700000200),
        (2, "assistant", "About nine minutes for a hard-boiled egg.", 1700000201),
    ]
    db.executemany("INSERT INTO messages(session_id, role, content, state, created) "
                   "VALUES (?, ?, ?, 'complete', ?)", rows)
    db.commit()
    db.close()
    return path


def test_a_word_from_an_old_chat_is_found(env, old_chats):
    result = breeze(env, "history", "search", "zanzibar")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout
    assert lines[0].startswith("Holiday plans  (chat 1, message 2, ")
    assert lines[1] == "  Breeze: [Zanzibar] has warm beaches and spice markets."
    assert stat.S_IMODE(old_chats.stat().st_mode) == 0o600


def test_json_prints_one_object_a_line_with_the_voice_marks(env, old_chats):
    store = Store(old_chats)
    session = store.new_session("Eggs by voice")
    asked = store.add(session, "user", "How do I poach an egg?", voice="dictated")
    answer = store.add(session, "assistant", "Swirl the water, then slide the egg in.")
    store.mark_voice(answer, "spoken")
    store.close()

    result = breeze(env, "history", "search", "egg", "--json")
    assert result.returncode == 0, result.stderr
    hits = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(hits) == 4
    assert all(set(hit) == {"session_id", "title", "message_id", "role", "snippet", "created",
                            "voice"} for hit in hits)
    by_id = {hit["message_id"]: hit for hit in hits}
    assert by_id[asked]["voice"] == "dictated" and by_id[asked]["role"] == "user"
    assert by_id[asked]["title"] == "Eggs by voice" and by_id[asked]["session_id"] == session
    assert by_id[answer]["voice"] == "spoken"
    assert by_id[answer]["snippet"] == "Swirl the water, then slide the [egg] in."
    assert by_id[3]["voice"] is None and by_id[3]["created"] == "2023-11-14T22:16:40+00:00"


def test_fts_syntax_narrows_the_search(env, old_chats):
    result = breeze(env, "history", "search", '"hard-boiled egg" OR beach*', "--json")
    assert result.returncode == 0, result.stderr
    assert sorted(json.loads(line)["message_id"] for line in result.stdout.splitlines()) == [2, 4]
    result = breeze(env, "history", "search", "egg NOT boil", "--json", "--limit", "1")
    assert [json.loads(line)["message_id"] for line in result.stdout.splitlines()] == [4]


@pytest.mark.parametrize("query", ['what?', '"unclosed', "c++", "title:eggs", "AND"])
def test_a_bad_query_is_e400_not_a_traceback(env, old_chats, query):
    result = breeze(env, "history", "search", query)
    assert result.returncode == 1
    assert result.stderr.startswith(f"E400: cannot search for {query!r}: "), result.stderr
    assert "double quotes" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_no_match_prints_nothing_and_says_so(env, old_chats):
    result = breeze(env, "history", "search", "zebra", "--json")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    result = breeze(env, "history", "search", "zebra")
    assert result.returncode == 0 and result.stdout == ""
    assert result.stderr == "No saved chat matches 'zebra'.\n"


def test_search_with_no_saved_chats_yet(env):
    result = breeze(env, "history", "search", "anything", "--json")
    assert (result.returncode, result.stdout) == (0, ""), result.stderr
