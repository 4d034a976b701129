"""The log panel: Breeze's log and native library output, inside the app."""

from __future__ import annotations

import logging
import threading

from textual.app import App
from textual.widgets import RichLog


class LogPanel(RichLog):
    def __init__(self) -> None:
        super().__init__(max_lines=2000, wrap=True, id="log-panel")


class PanelHandler(logging.Handler):
    """Forwards log records to the panel from whichever thread logs them."""

    def __init__(self, app: App[object], panel: LogPanel) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                            "%H:%M:%S"))
        self._app = app
        self._panel = panel
        self._main = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        if threading.get_ident() == self._main:
            self._panel.write(line)
        else:
            try:
                self._app.call_from_thread(self._panel.write, line)
            except RuntimeError:  # the app is shutting down
                pass
