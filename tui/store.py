"""Chat sessions in SQLite under the XDG data dir.

A reply is written while it streams (state "streaming") with the pid of the process writing it,
so a crash or kill loses nothing that was shown. Each process holds a lock on the byte at its
pid in `<database>.lock` while its store is open; the system drops that lock when the process
ends, kill -9 included, and a process that merely reuses the pid does not hold it. At start, a
streaming reply whose writer holds no lock is marked "interrupted"; one that another running
Breeze is still writing is left alone.

A database that cannot be read (not SQLite, damaged, another program's tables, a directory) is
moved aside, never deleted, and a new one is started: `Store.problems` says so, for the app to
show. Every file of the database is private to the user (0600).

Every message is indexed for full-text search (SQLite FTS5), by triggers: a reply is found
while it is still being written, and an edit or a delete leaves no stale entry. A database
made before the index is indexed when it is opened.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from breeze.engine import BreezeError

from .private_files import make_private_dir, make_private_file, tighten

log = logging.getLogger(__name__)

STATES = ("complete", "streaming", "stopped", "interrupted", "error")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY, title TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    role TEXT NOT NULL, content TEXT NOT NULL, state TEXT NOT NULL,
    error TEXT, metadata TEXT, created REAL NOT NULL, writer INTEGER
);
CREATE INDEX IF NOT EXISTS messages_by_session ON messages(session_id, id);
"""
_SEARCH_SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(
    content, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END;
"""
# How a turn was made, when by voice: a prompt dictated from the microphone, a reply spoken.
VOICE_MARKS = ("dictated", "spoken")
# The columns a database of any Breeze version has; `writer` and `voice` came later and are
# added on open.
_COLUMNS = {
    "sessions": {"id", "title", "created", "updated"},
    "messages": {"id", "session_id", "role", "content", "state", "error", "metadata", "created"},
}
_SIDE_FILES = ("-wal", "-shm", "-journal")
_HEADER = b"SQLite format 3\x00"
# Above this size the full read of `PRAGMA quick_check` would slow every start noticeably;
# the first queries still catch a damaged header or schema.
QUICK_CHECK_MAX_BYTES = 64 * 1024 * 1024
BUSY_TIMEOUT_S = 5.0  # how long to wait for another process's write to end


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
    voice: str | None = None  # one of VOICE_MARKS


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A message that matches a search; `snippet` is its text around the match, each matched
    word between the store's `mark` strings."""

    session_id: int
    title: str
    message_id: int
    role: str
    snippet: str
    created: float
    voice: str | None


def default_path() -> Path:
    base = os.environ.get("BREEZE_DATA_DIR") or platformdirs.user_data_dir("breeze")
    return Path(base) / "sessions.sqlite3"


class _Unreadable(Exception):
    """The file at the database's path is no chat database Breeze can use."""

    def __init__(self, why: str, damaged: bool = False) -> None:
        super().__init__(why)
        self.why = why
        self.damaged = damaged  # SQLite's .recover may get the chats back


class Store:
    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path else default_path()
        self.problems: list[str] = []  # what went wrong on opening, in words for the user
        self._pid = os.getpid()
        self._closed = False
        try:
            make_private_dir(self.path.parent)
            self._locks = _Locks.acquire(self.path.with_name(self.path.name + ".lock"))
        except OSError as exc:
            raise _cannot_open(self.path, exc.strerror or str(exc)) from exc
        try:
            with self._locks.starting():
                self._open_or_replace()
        except BaseException:
            self._locks.release()
            raise

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._db.close()
            self._locks.release()

    def _open_or_replace(self) -> None:
        try:
            self._open()
        except _Unreadable as problem:
            moved = self._move_aside()
            message = (f"Your saved chats could not be opened: {self.path} {problem.why}. "
                       f"It is kept as {moved}, and Breeze started a new chat database.")
            if problem.damaged:
                message += f" `sqlite3 {moved} .recover` may get most chats back."
            self.problems.append(message)
            log.warning("%s", message)
            try:
                self._open()
            except _Unreadable as exc:
                raise _cannot_open(self.path, exc.why) from exc

    def _open(self) -> None:
        """Open the database and mark the replies cut short; the first reads of a damaged
        database fail here, before the app starts."""
        if self.path.is_dir():
            raise _Unreadable("is a directory")
        try:
            make_private_file(self.path)  # SQLite gives its -wal and -shm files the same mode
        except OSError as exc:
            raise _cannot_open(self.path, exc.strerror or str(exc)) from exc
        for suffix in _SIDE_FILES:
            tighten(Path(f"{self.path}{suffix}"))
        _sniff(self.path)
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                             check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            _check(db, self.path)
            db.executescript(_SCHEMA)
            columns = _columns(db, "messages")
            if "writer" not in columns:  # a database of an older Breeze
                db.execute("ALTER TABLE messages ADD COLUMN writer INTEGER")
            if "voice" not in columns:
                db.execute("ALTER TABLE messages ADD COLUMN voice TEXT")
            _index_for_search(db)
            self.interrupted = self._mark_interrupted(db)
        except sqlite3.DatabaseError as exc:
            db.close()
            name = getattr(exc, "sqlite_errorname", "")
            if name.startswith("SQLITE_NOTADB"):
                raise _Unreadable("is not a SQLite database") from exc
            if name.startswith("SQLITE_CORRUPT"):
                raise _Unreadable(f"is damaged ({exc})", damaged=True) from exc
            raise _cannot_open(self.path, str(exc)) from exc  # locked, read-only, disk full...
        except BaseException:
            db.close()
            raise
        self._db = db

    def _move_aside(self) -> Path:
        """Rename the database and its side files to a free `.broken-<time>` name."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.broken-{stamp}")
        n = 1
        while any(Path(f"{target}{s}").exists() for s in ("", *_SIDE_FILES)):
            n += 1
            target = self.path.with_name(f"{self.path.name}.broken-{stamp}-{n}")
        try:
            # The database last: an old write-ahead log must never sit beside a new database.
            for suffix in (*_SIDE_FILES, ""):
                source = Path(f"{self.path}{suffix}")
                if source.exists():
                    source.rename(f"{target}{suffix}")
        except OSError as exc:
            raise _cannot_open(self.path, f"it cannot be read and could not be moved aside "
                                          f"({exc.strerror or exc})") from exc
        return target

    def _mark_interrupted(self, db: sqlite3.Connection) -> int:
        writers = db.execute(
            "SELECT DISTINCT writer FROM messages WHERE state='streaming'"
        ).fetchall()
        count = 0
        for (writer,) in writers:
            if writer is None or not self._locks.held_by(writer):
                count += db.execute(
                    "UPDATE messages SET state='interrupted', writer=NULL "
                    "WHERE state='streaming' AND writer IS ?",
                    (writer,),
                ).rowcount
        return count

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

    def add(self, session_id: int, role: str, content: str, state: str = "complete",
            voice: str | None = None) -> int:
        assert voice is None or voice in VOICE_MARKS, voice
        now = time.time()
        cursor = self._db.execute(
            "INSERT INTO messages(session_id, role, content, state, created, writer, voice) "
            "VALUES (?,?,?,?,?,?,?)",
            (session_id, role, content, state, now, self._writer(state), voice),
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
            "UPDATE messages SET content=?, state=?, error=?, metadata=?, writer=? WHERE id=?",
            (content, state, error, json.dumps(metadata) if metadata else None,
             self._writer(state), message_id),
        )

    def mark_voice(self, message_id: int, voice: str) -> None:
        """Record that a message was dictated, or a reply spoken."""
        assert voice in VOICE_MARKS, voice
        self._db.execute("UPDATE messages SET voice=? WHERE id=?", (voice, message_id))

    def _writer(self, state: str) -> int | None:
        return self._pid if state == "streaming" else None

    def remove_message(self, message_id: int) -> None:
        self._db.execute("DELETE FROM messages WHERE id=?", (message_id,))

    def messages(self, session_id: int) -> list[Message]:
        rows = self._db.execute(
            "SELECT id, role, content, state, error, metadata, voice FROM messages "
            "WHERE session_id=? ORDER BY id",
            (session_id,),
        ).fetchall()
        return [Message(*row[:5], json.loads(row[5]) if row[5] else None, row[6])
                for row in rows]

    def search(self, query: str, limit: int = 50, mark: tuple[str, str] = ("[", "]")
               ) -> list[SearchHit]:
        """The messages of every chat that match `query`, in FTS5's query syntax (words,
        "a phrase", prefix*, AND, OR, NOT), best first. E400 for a query that is not."""
        if not query.strip():
            return []
        try:
            rows = self._db.execute(
                "SELECT m.session_id, s.title, m.id, m.role, "
                "snippet(messages_fts, 0, ?, ?, '…', 12), m.created, m.voice "
                "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
                "JOIN sessions s ON s.id = m.session_id "
                "WHERE messages_fts MATCH ? ORDER BY rank, m.id DESC LIMIT ?",
                (*mark, query, limit),
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorname", "SQLITE_ERROR") != "SQLITE_ERROR":
                raise  # busy, locked, I/O: not the query's fault
            raise BreezeError("E400", f"cannot search for {query!r}: {_fts_problem(exc)}. "
                                      'Put words in double quotes to search for them as '
                                      'they are.') from None
        return [SearchHit(*row) for row in rows]

    def export_markdown(self, session_id: int) -> str:
        lines = [f"# {self.title(session_id)}", ""]
        for message in self.messages(session_id):
            how = f" ({message.voice})" if message.voice else ""
            lines.append(f"## {message.role.capitalize()}{how}")
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


def plain_query(text: str) -> str:
    """FTS5 syntax for `text` as typed into a search field: each word as it is, the last one
    also as the start of a longer word (the user may be typing it)."""
    terms = []
    words = text.split()
    for n, word in enumerate(words):
        if not any(c.isalnum() for c in word):
            continue  # no word in it for the index: as a phrase it would match nothing
        prefix = word.endswith("*") or (n == len(words) - 1 and text[-1:].isalnum())
        terms.append('"' + word.rstrip("*").replace('"', '""') + '"' + ("*" if prefix else ""))
    return " ".join(terms)


def _index_for_search(db: sqlite3.Connection) -> None:
    new = db.execute("SELECT 1 FROM sqlite_master WHERE name='messages_fts'").fetchone() is None
    # A database made before the index: index what it holds, in the transaction that makes it.
    rebuild = "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');" if new else ""
    db.executescript(f"BEGIN; {_SEARCH_SCHEMA} {rebuild} COMMIT;")


def _fts_problem(exc: sqlite3.OperationalError) -> str:
    text = str(exc).removeprefix("fts5: ")
    if text.startswith("no such column"):  # `word:` reads as a column filter
        return f"{text} (a word followed by a colon names a column)"
    return text


def _cannot_open(path: Path, why: str) -> BreezeError:
    return BreezeError("E501", f"cannot open the saved chats in {path}: {why}")


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _sniff(path: Path) -> None:
    """Raise `_Unreadable` for a file that is no database, before SQLite opens it: closing it,
    SQLite would delete the -wal and -shm files beside it."""
    try:
        with path.open("rb") as file:
            header = file.read(len(_HEADER))
    except OSError as exc:
        raise _cannot_open(path, exc.strerror or str(exc)) from exc
    if header and header != _HEADER:
        raise _Unreadable("is not a SQLite database")
    wal = Path(f"{path}-wal")
    if not header and wal.is_file() and wal.stat().st_size:
        raise _Unreadable("is empty, but its write-ahead log is not")


def _check(db: sqlite3.Connection, path: Path) -> None:
    """Raise `_Unreadable` unless the database is empty or a sound one of Breeze's."""
    tables = {name for (name,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
    )}
    if tables and not tables & _COLUMNS.keys():
        raise _Unreadable(f"holds another program's tables ({', '.join(sorted(tables)[:5])})")
    for table in tables & _COLUMNS.keys():
        if missing := _COLUMNS[table] - _columns(db, table):
            raise _Unreadable(f"has a {table} table without {', '.join(sorted(missing))}: "
                              "not one of Breeze's")
    if path.stat().st_size <= QUICK_CHECK_MAX_BYTES:
        result = db.execute("PRAGMA quick_check(1)").fetchone()[0]
        if result != "ok":
            raise _Unreadable(f"is damaged ({result})", damaged=True)


class _Locks:
    """This process's hold on a database's lock file. One per file and process, shared by its
    stores: closing any descriptor of a file drops all of the process's POSIX locks on it."""

    _held: dict[str, _Locks] = {}
    STARTING = 0  # the byte held while a process opens, repairs and sweeps the database

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self.users = 0

    @classmethod
    def acquire(cls, path: Path) -> _Locks:
        key = os.path.realpath(path)
        locks = cls._held.get(key)
        if locks is None:
            locks = cls._held[key] = cls(key)
            if not _lock(locks.fd, os.getpid(), within_s=2):
                log.warning("cannot lock %s: another Breeze may take its replies as cut short",
                            key)
        locks.users += 1
        return locks

    def release(self) -> None:
        self.users -= 1
        if self.users == 0:
            del self._held[self.path]
            os.close(self.fd)  # the system drops the locks

    @contextmanager
    def starting(self) -> Iterator[None]:
        if not _lock(self.fd, self.STARTING, within_s=10):
            log.warning("another Breeze is slow to open %s; opening it anyway", self.path)
        try:
            yield
        finally:
            with suppress(OSError):
                fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, self.STARTING)

    def held_by(self, pid: int) -> bool:
        """Whether the process `pid` holds its lock: it is running, and writing replies."""
        if pid == os.getpid():
            # This process is only opening its store: a reply saved with its pid was written
            # by an earlier process with the same pid, or by a store dropped without closing.
            return False
        if pid <= self.STARTING:
            return False
        try:
            fcntl.lockf(self.fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, pid)
        except (BlockingIOError, PermissionError):
            return True
        except OSError:  # no such byte (a pid that cannot be), or no locks on this file system
            return False
        fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, pid)
        return False


def _lock(fd: int, byte: int, within_s: float) -> bool:
    """Lock `byte` of the file, waiting at most `within_s` for another process to let go."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, byte)
            return True
        except (BlockingIOError, PermissionError):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        except OSError:
            return False
