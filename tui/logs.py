"""The app's log file: where Breeze and native libraries (llama.cpp, Kaldi) write, instead of
the terminal."""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

import platformdirs


def log_path() -> Path:
    base = os.environ.get("BREEZE_LOG_DIR") or platformdirs.user_log_dir("breeze")
    return Path(base) / "breeze.log"


def setup_logging() -> Path:
    """Send every log record to the rotating log file, and none to the terminal."""
    path = log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=2_000_000, backupCount=2, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("BREEZE_LOG_LEVEL", "INFO").upper())
    return path
