"""The log panel: Breeze's log and native library output, inside the app."""

from __future__ import annotations

import asyncio
import logging
import threading

from textual.widgets import RichLog


class LogPanel(RichLog):
    def __init__(self) -> None:
        super().__init__(max_lines=2000, wrap=True, id="log-panel")


class PanelHandler(logging.Handler):
    """Forwards log records to the panel from whichever thread logs them. Made on the app's
    event loop. Another thread hands its line to the loop without waiting: logging holds the
    handler's lock meanwhile, and the loop may itself be waiting for that lock to log."""

    def __init__(self, panel: LogPanel) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                            "%H:%M:%S"))
        self._panel = panel
        self._loop = asyncio.get_running_loop()
        self._main = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        if threading.get_ident() == self._main:
            self._panel.write(line)
        else:
            try:
                self._loop.call_soon_threadsafe(self._panel.write, line)
            except RuntimeError:  # the app has closed its loop
                pass
