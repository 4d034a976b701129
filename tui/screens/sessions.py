"""Saved chats: resume, rename, delete, export to Markdown."""

from __future__ import annotations

import time
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from ..store import Store


class SessionsScreen(ModalScreen[int | None]):
    """Dismissed with the id of the session to open, or None."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Close"),
        Binding("r", "rename", "Rename"),
        Binding("d", "delete", "Delete"),
        Binding("e", "export", "Export to Markdown"),
    ]

    def __init__(self, store: Store, export_dir: Path) -> None:
        super().__init__()
        self.store = store
        self.export_dir = export_dir
        self._to_delete: int | None = None  # asked once

    def compose(self) -> ComposeResult:
        with Vertical(id="sessions"):
            yield Static("Chats — enter open · r rename · d d delete · e export · esc close",
                         classes="title")
            yield OptionList(id="session-list")
            yield Input(placeholder="New title, then enter", id="rename")

    def on_mount(self) -> None:
        self.query_one("#rename", Input).display = False
        self._refresh()

    def _refresh(self, highlight: int = 0) -> None:
        self._to_delete = None
        options = self.query_one(OptionList)
        options.clear_options()
        for s in self.store.sessions():
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.updated))
            options.add_option(Option(f"{s.title}  ({s.messages} messages, {when})", id=str(s.id)))
        if options.option_count:
            options.highlighted = min(highlight, options.option_count - 1)
        options.focus()

    def _selected(self) -> int | None:
        options = self.query_one(OptionList)
        if options.highlighted is None:
            return None
        option_id = options.get_option_at_index(options.highlighted).id
        return int(option_id) if option_id else None

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id) if event.option.id else None)

    def action_rename(self) -> None:
        if self._selected() is None:
            return
        field = self.query_one("#rename", Input)
        field.display = True
        field.value = self.store.title(self._selected() or 0)
        field.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        session_id = self._selected()
        if session_id is not None and event.value.strip():
            self.store.rename(session_id, event.value)
        event.input.display = False
        self._refresh()

    def action_delete(self) -> None:
        """d asks, a second d deletes (one key must not lose a chat)."""
        session_id = self._selected()
        if session_id is None:
            return
        if self._to_delete != session_id:
            self._to_delete = session_id
            self.notify(f"Press d again to delete “{self.store.title(session_id)}”.",
                        severity="warning", timeout=5)
            return
        index = self.query_one(OptionList).highlighted or 0
        self.store.delete(session_id)
        self._refresh(index)

    def on_option_list_option_highlighted(self) -> None:
        self._to_delete = None

    def action_export(self) -> None:
        session_id = self._selected()
        if session_id is None:
            return
        path = self.export_dir / f"breeze-chat-{session_id}.md"
        try:
            self.export_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(self.store.export_markdown(session_id), encoding="utf-8")
        except OSError as exc:
            self.notify(f"E501: cannot write {path}: {exc.strerror}", severity="error")
            return
        self.notify(f"Exported to {path}")
