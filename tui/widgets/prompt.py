"""The prompt box: Enter sends, Shift+Enter or Ctrl+J adds a newline. Dictation writes into
it: the utterance in progress dimmed at the cursor, each final one as ordinary text."""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widgets import TextArea


class PromptInput(TextArea):
    class Submitted(Message):
        def __init__(self, prompt: PromptInput, text: str) -> None:
            super().__init__()
            self.prompt = prompt
            self.text = text

    def __init__(self, **kwargs: object) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, **kwargs)  # type: ignore[arg-type]
        self.hide_suggestion_on_blur = False  # the dictated partial shows wherever focus is

    def show_partial(self, text: str) -> None:
        """The utterance being dictated, dimmed after the cursor; not yet part of the text."""
        self.suggestion = self._spaced(text) if text else ""

    def add_final(self, text: str) -> None:
        """A finalized utterance, inserted at the cursor as editable text."""
        self.suggestion = ""
        self.insert(self._spaced(text))

    def _spaced(self, text: str) -> str:
        row, column = self.cursor_location
        before = self.document.get_line(row)[:column]
        if not before.strip() or before.rstrip()[-1] in ".?!":
            text = text[:1].upper() + text[1:]
        return f" {text}" if before and not before[-1].isspace() else text

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            text = self.text.strip()
            if text:
                self.post_message(self.Submitted(self, text))
            return
        if event.key in ("shift+enter", "ctrl+j"):
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        await super()._on_key(event)
