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
        row, column = self.cursor_location
        after = self.document.get_line(row)[column:]
        spaced = self._spaced(text)
        self.insert(spaced + " " if after[:1].strip() else spaced)
        if after[:1].strip():  # before the text that follows, like the partial was shown
            self.move_cursor_relative(columns=-1)

    @property
    def text_with_partial(self) -> str:
        """The text as it looks: with the dictated partial at the cursor."""
        if not self.suggestion:
            return self.text
        row, column = self.cursor_location
        lines = self.text.split("\n")
        lines[row] = lines[row][:column] + self.suggestion + lines[row][column:]
        return "\n".join(lines)

    def action_cursor_right(self, select: bool = False) -> None:
        """Move right; never take the dictated partial in as text (its final will come)."""
        partial, self.suggestion = self.suggestion, ""
        super().action_cursor_right(select)
        self.suggestion = partial

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
            text = self.text_with_partial.strip()
            if text:
                self.post_message(self.Submitted(self, text))
            return
        if event.key in ("shift+enter", "ctrl+j"):
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        await super()._on_key(event)
