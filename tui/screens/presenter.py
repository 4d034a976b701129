"""The presenter view, for a room: what Breeze hears and what it says, in large high-contrast
captions, the sentence being spoken highlighted, the last turn's latency, and nothing else.
The chat screen sets its attributes as the conversation goes; it renders them."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Static

__all__ = ["PresenterScreen"]

_SHOWN_CHARS = 420  # a caption shows the end of a long text: the room reads what is new


class PresenterScreen(Screen[None]):
    BINDINGS = [
        Binding("f5", "app.pop_screen", "Back to the chat"),
        Binding("escape", "app.pop_screen", "Back to the chat", show=False),
    ]

    heard: reactive[str] = reactive("")
    heard_final: reactive[bool] = reactive(True)  # False: the words are still coming
    said: reactive[str] = reactive("")
    speaking: reactive[str] = reactive("")  # the sentence being spoken, within `said`
    latency: reactive[str] = reactive("")
    state: reactive[str] = reactive("")

    def compose(self) -> ComposeResult:
        yield Static(id="present-state")
        yield Static("YOU", classes="present-label")
        yield Static(id="present-heard")
        yield Static("BREEZE", classes="present-label")
        yield Static(id="present-said")
        yield Static(id="present-latency")

    def on_mount(self) -> None:
        self._show_heard()
        self._show_said()
        self.query_one("#present-latency", Static).update(self.latency)
        self.query_one("#present-state", Static).update(self.state)

    def watch_heard(self) -> None:
        self._show_heard()

    def watch_heard_final(self) -> None:
        self._show_heard()

    def watch_said(self) -> None:
        self._show_said()

    def watch_speaking(self) -> None:
        self._show_said()

    def watch_latency(self, latency: str) -> None:
        if self.is_mounted:
            self.query_one("#present-latency", Static).update(latency)

    def watch_state(self, state: str) -> None:
        if self.is_mounted:
            self.query_one("#present-state", Static).update(state)

    def _show_heard(self) -> None:
        if not self.is_mounted:
            return
        text = Text(_tail(self.heard), style="" if self.heard_final else "italic")
        self.query_one("#present-heard", Static).update(text)

    def _show_said(self) -> None:
        if not self.is_mounted:
            return
        said = _tail(self.said)
        text = Text(said)
        start = said.rfind(self.speaking.strip()) if self.speaking.strip() else -1
        if start >= 0:
            text.stylize("reverse", start, start + len(self.speaking.strip()))
        self.query_one("#present-said", Static).update(text)


def _tail(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= _SHOWN_CHARS:
        return text
    cut = text.find(" ", len(text) - _SHOWN_CHARS)
    return "… " + text[cut + 1:] if cut >= 0 else text[-_SHOWN_CHARS:]
