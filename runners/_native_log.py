"""Keep native libraries' output off the terminal: into the app's log instead.

No file descriptor is ever redirected: the app draws its screen through them. The libraries
log through their own settings (llama.cpp's log callback, vosk's and pocketsphinx's log
levels); what a binding prints from Python while loading goes through `python_stderr_to_log`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from collections.abc import Iterator

log = logging.getLogger("breeze.native")
_lock = threading.Lock()


class _LogWriter(io.TextIOBase):
    """A text stream whose lines become log records."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if line.strip():
                log.info("%s: %s", self.name, line.rstrip())
        return len(text)

    def flush(self) -> None:
        if self.pending.strip():
            log.info("%s: %s", self.name, self.pending.rstrip())
        self.pending = ""


@contextlib.contextmanager
def python_stderr_to_log(name: str) -> Iterator[None]:
    """While the block runs, what Python code prints to `sys.stderr` goes to the log (the
    terminal's own stream, `sys.__stderr__`, is left alone)."""
    writer = _LogWriter(name)
    with _lock, contextlib.redirect_stderr(writer):
        try:
            yield
        finally:
            writer.flush()
