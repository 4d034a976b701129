"""The help screen: every key, read from the bindings themselves."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

EDITING = [
    ("enter", "send the message"),
    ("shift+enter / ctrl+j", "new line in the message"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def __init__(self, bindings: list[Binding]) -> None:
        super().__init__()
        self.listed = bindings

    def compose(self) -> ComposeResult:
        rows = ["# Keys", "", "| key | action |", "| --- | --- |"]
        rows += [f"| {key} | {what} |" for key, what in EDITING]
        rows += [f"| {b.key.replace(',', ' / ')} | {b.description} |" for b in self.listed
                 if b.description]
        rows += ["", "Every action is also in the command palette (ctrl+p)."]
        with VerticalScroll(id="help"):
            yield Markdown("\n".join(rows))
