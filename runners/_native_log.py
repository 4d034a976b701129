"""Keep native libraries' output off the terminal: into the app's log instead."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator

log = logging.getLogger("breeze.native")
_lock = threading.Lock()


@contextlib.contextmanager
def stderr_to_log(name: str) -> Iterator[None]:
    """Redirect file descriptor 2 (what C code writes to) into the log while the block runs.

    Process-wide, so it is used only around short native calls such as loading a model.
    """
    with _lock, tempfile.TemporaryFile() as sink:
        try:
            sys.stderr.flush()
        except (AttributeError, ValueError):
            pass
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            for line in sink.read().decode("utf-8", "replace").splitlines():
                if line.strip():
                    log.info("%s: %s", name, line)
