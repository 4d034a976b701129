"""Files that hold the user's words (chats, logs) are the user's alone: 0600, in 0700
directories; files an older version made readable to others are tightened."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["make_private_dir", "make_private_file", "tighten"]


def make_private_dir(path: Path) -> None:
    """Create `path` and its missing parents, each readable by the user only."""
    missing: list[Path] = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:  # made meanwhile by another process
            pass


def make_private_file(path: Path) -> None:
    """Create `path` empty with mode 0600, or take group and others' access away from the file
    an older version created."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except IsADirectoryError:
        return
    tighten(path)


def tighten(path: Path) -> None:
    """Take group and others' access away from `path` if it exists."""
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            path.chmod(mode & 0o700)
    except OSError:  # gone, or someone else's file: nothing Breeze may change
        pass
