"""Chat sessions in SQLite under the XDG data dir.

A reply is written while it streams (state "streaming"), so a crash or kill loses nothing
that was shown; on the next start such replies are marked "interrupted".
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

STATES = ("complete", "streaming", "stopped", "interrupted", "error")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY, title TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    role TEXT NOT NULL, content TEXT NOT NULL, state TEXT NOT NULL,
    error TEXT, metadata TEXT, created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_session ON messages(session_id, id);
"""


@dataclass(frozen=True, slots=True)
class Session:
    id: int
    title: str
    updated: float
    messages: int


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    role: str
    content: str
    state: str
    error: str | None = None
    metadata: dict[str, Any] | None = None


def default_path() -> Path:
    base = os.environ.get("BREEZE_DATA_DIR") or platformdirs.user_data_dir("breeze")
    return Path(base) / "sessions.sqlite3"


class Store:
    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self.interrupted = self._mark_interrupted()

    def close(self) -> None:
        self._db.close()

    def _mark_interrupted(self) -> int:
        cursor = self._db.execute(
            "UPDATE messages SET state='interrupted' WHERE state='streaming'"
        )
        return cursor.rowcount

    # -- sessions --------------------------------------------------------------------------

    def new_session(self, title: str = "New chat") -> int:
        now = time.time()
        cursor = self._db.execute(
            "INSERT INTO sessions(title, created, updated) VALUES (?, ?, ?)", (title, now, now)
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def sessions(self) -> list[Session]:
        rows = self._db.execute(
            "SELECT s.id, s.title, s.updated, COUNT(m.id) FROM sessions s "
            "LEFT JOIN messages m ON m.session_id = s.id GROUP BY s.id ORDER BY s.updated DESC"
        ).fetchall()
        return [Session(*row) for row in rows]

    def has_session(self, session_id: int) -> bool:
        return self._db.execute("SELECT 1 FROM sessions WHERE id = ?",
                                (session_id,)).fetchone() is not None

    def title(self, session_id: int) -> str:
        row = self._db.execute("SELECT title FROM sessions WHERE id=?", (session_id,)).fetchone()
        return row[0] if row else ""

    def rename(self, session_id: int, title: str) -> None:
        title = " ".join(title.split())[:120] or "Untitled"
        self._db.execute("UPDATE sessions SET title=? WHERE id=?", (title, session_id))

    def delete(self, session_id: int) -> None:
        self._db.execute("DELETE FROM sessions WHERE id=?", (session_id,))

    # -- messages --------------------------------------------------------------------------

    def add(self, session_id: int, role: str, content: str, state: str = "complete") -> int:
        now = time.time()
        cursor = self._db.execute(
            "INSERT INTO messages(session_id, role, content, state, created) VALUES (?,?,?,?,?)",
            (session_id, role, content, state, now),
        )
        self._db.execute("UPDATE sessions SET updated=? WHERE id=?", (now, session_id))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def update(
        self,
        message_id: int,
        content: str,
        state: str,
        error: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        assert state in STATES, state
        self._db.execute(
            "UPDATE messages SET content=?, state=?, error=?, metadata=? WHERE id=?",
            (content, state, error, json.dumps(metadata) if metadata else None, message_id),
        )

    def remove_message(self, message_id: int) -> None:
        self._db.execute("DELETE FROM messages WHERE id=?", (message_id,))

    def messages(self, session_id: int) -> list[Message]:
        rows = self._db.execute(
            "SELECT id, role, content, state, error, metadata FROM messages "
            "WHERE session_id=? ORDER BY id",
            (session_id,),
        ).fetchall()
        return [Message(*row[:5], json.loads(row[5]) if row[5] else None) for row in rows]

    def export_markdown(self, session_id: int) -> str:
        lines = [f"# {self.title(session_id)}", ""]
        for message in self.messages(session_id):
            lines.append(f"## {message.role.capitalize()}")
            lines.append("")
            lines.append(message.content)
            if fence := _open_fence(message.content):  # a reply stopped inside a code block
                lines.append(fence)
            if message.state != "complete":
                state = "still being written" if message.state == "streaming" else message.state
                why = f": {message.error}" if message.error else ""
                lines.append(f"\n*({state}{why})*")
            lines.append("")
        return "\n".join(lines)


def _open_fence(markdown: str) -> str:
    """The fence that closes a code block left open at the end of `markdown`, or ""."""
    fence = ""
    for line in markdown.splitlines():
        stripped = line.lstrip()
        if not fence and stripped.startswith(("```", "~~~")):
            marker = stripped[0]
            fence = marker * (len(stripped) - len(stripped.lstrip(marker)))
        elif fence and stripped.startswith(fence) and not stripped.strip(fence[0]).strip():
            fence = ""
    return fence
