"""One chat message: who, the Markdown body (streamed), and how it ended."""

from __future__ import annotations

import re

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from .message_markdown import MessageMarkdown, OneLayoutPass

# A sentence with Markdown inside is not highlighted in the text (the bold could break it);
# the speech bar still shows it. A list item's marker is left outside the bold.
_MARKUP = re.compile(r"[*_`\[\]#|<>\n]")
_LIST_MARKER = re.compile(r"\s*([-+*]|\d+[.)])\s+")



class MessageView(OneLayoutPass, Vertical):
    """Renders a message; the screen feeds it text, it never talks to a model."""

    can_focus = True

    def __init__(self, role: str, text: str = "", state: str = "complete",
                 message_id: int | None = None) -> None:
        super().__init__(classes=f"message {role}")
        self.role = role
        self.message_id = message_id
        self.text = text
        self.state = state
        self.error: str | None = None
        self.continuable = True  # ctrl+g is offered: the chat's runner continues replies
        self._state_note = ""  # how it ended: stopped, an error
        self._remarks: list[str] = []  # the guardian's, under it
        self._streaming = False
        self._highlighted = False

    def compose(self) -> ComposeResult:
        yield Static("You" if self.role == "user" else "Breeze", classes="role")
        yield MessageMarkdown(self.text, classes="body")
        yield Static("", classes="note")

    def on_mount(self) -> None:
        self.set_state(self.state)

    @property
    def body(self) -> MessageMarkdown:
        return self.query_one(".body", MessageMarkdown)

    async def append(self, delta: str) -> None:
        """Add streamed text. One batch for the whole change: the block updated and the blocks
        mounted cost one layout and paint together, not one each (half the app's work while
        a reply streams, which the model's threads would otherwise lose)."""
        if not delta:
            return
        self._streaming = True
        self.text += delta
        with self.app.batch_update():
            await self.body.append(delta)

    async def finish(self, text: str, state: str, error: str | None = None) -> None:
        """The final text (authoritative: it holds what streaming may have skipped)."""
        self._streaming = False
        if text != self.text:
            self.text = text
            await self.body.update(text)
        self.set_state(state, error)

    async def highlight(self, sentence: str | None) -> None:
        """Show the sentence being spoken in bold (not while the text still streams in);
        None shows the text as it is."""
        if self._streaming:
            return
        sentence = (sentence or "").strip()
        marker = _LIST_MARKER.match(sentence)
        sentence = sentence[marker.end():] if marker else sentence
        start = self.text.find(sentence) if sentence and not _MARKUP.search(sentence) else -1
        if start >= 0:
            end = start + len(sentence)
            await self.body.update(f"{self.text[:start]}**{sentence}**{self.text[end:]}")
        elif self._highlighted:
            await self.body.update(self.text)
        self._highlighted = start >= 0

    def add_note(self, text: str) -> None:
        """A remark under the message (the guardian's warnings, say), kept until the reply
        is written again."""
        self._remarks.append(text)
        self._show_notes()

    def set_state(self, state: str, error: str | None = None) -> None:
        self.state, self.error = state, error
        for name in ("streaming", "stopped", "interrupted", "error"):
            self.set_class(state == name, f"-{name}")
        note = error or ""
        if state == "stopped" or (state == "interrupted" and not error):
            keys = "ctrl+r regenerate · ctrl+g continue" if self.continuable else \
                "ctrl+r regenerate"
            note = f"{error or state} — {keys}"
        if state == "streaming":
            self._remarks.clear()  # they were about the text as it was
        self._state_note = note
        self._show_notes()

    def _show_notes(self) -> None:
        lines = [line for line in (self._state_note, *self._remarks) if line]
        widget = self.query_one(".note", Static)
        widget.update("\n".join(lines))
        widget.display = bool(lines)
