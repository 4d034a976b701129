"""While a reply is spoken: how far playback has got, and the sentence being heard."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static


class SpeechBar(Horizontal):
    """Fed by the chat screen from speech events and the player's position."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.origin_ms: float | None = None  # where the reply's audio starts on the timeline
        self.end_ms = 0.0  # where the audio queued so far ends
        self.sentence = -1  # the index of the sentence being heard
        self.heard_ms = 0.0  # how much of the reply's audio has been played

    def compose(self) -> ComposeResult:
        yield Static("", id="speech-sentence")
        yield ProgressBar(total=None, show_eta=False, id="speech-progress")

    def on_mount(self) -> None:
        self.display = False

    def start(self) -> None:
        self.origin_ms, self.end_ms, self.sentence, self.heard_ms = None, 0.0, -1, 0.0
        self.query_one(ProgressBar).update(total=None, progress=0)
        self.query_one("#speech-sentence", Static).update("speaking…")
        self.display = True

    def queued(self, start_ms: float, end_ms: float) -> None:
        if self.origin_ms is None:
            self.origin_ms = start_ms
        self.end_ms = max(self.end_ms, end_ms)

    def playing(self, index: int, text: str) -> None:
        self.sentence = index
        line = Text.assemble(("▶ ", "bold"), (f"{index + 1} ", "dim"), (text.strip(), "reverse"))
        line.truncate(max(10, self.size.width - 30), overflow="ellipsis")
        self.query_one("#speech-sentence", Static).update(line)

    def advance(self, played_ms: float) -> None:
        """Played against queued: the total grows while the reply is still being written."""
        if self.origin_ms is None:
            return
        total = max(1.0, self.end_ms - self.origin_ms)
        self.heard_ms = min(total, max(self.heard_ms, played_ms - self.origin_ms))
        self.query_one(ProgressBar).update(total=total, progress=self.heard_ms)

    @property
    def percent(self) -> float:
        bar = self.query_one(ProgressBar)
        return 100.0 * bar.percentage if bar.percentage is not None else 0.0

    def stop(self) -> None:
        self.display = False
