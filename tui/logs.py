"""The app's log file: where Breeze and native libraries (llama.cpp, Kaldi) write, instead of
the terminal. The log quotes what the user said and typed, so it is private to the user (0600,
in directories of mode 0700), like the chat database."""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

import platformdirs

from .private_files import make_private_dir, make_private_file, tighten

BACKUPS = 2


def log_path() -> Path:
    base = os.environ.get("BREEZE_LOG_DIR") or platformdirs.user_log_dir("breeze")
    return Path(base) / "breeze.log"


def _rotate(source: str, dest: str) -> None:
    """A rollover: the new log file the handler opens next exists already, private."""
    os.replace(source, dest)
    make_private_file(Path(source))


def setup_logging() -> Path:
    """Send every log record to the rotating log file, and none to the terminal."""
    path = log_path()
    make_private_dir(path.parent)
    for existing in (path, *(Path(f"{path}.{n}") for n in range(1, BACKUPS + 1))):
        tighten(existing)
    make_private_file(path)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=2_000_000, backupCount=BACKUPS, encoding="utf-8"
    )
    handler.rotator = _rotate
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("BREEZE_LOG_LEVEL", "INFO").upper())
    return path
