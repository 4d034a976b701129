"""Saved chats: resume, rename, delete, export to Markdown, and search every chat."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from ..store import SearchHit, Store, plain_query

SEARCH_LIMIT = 200  # messages searched for the chats shown: plenty for a screenful of chats
_MARK = ("\x02", "\x03")  # around each matched word in a snippet: no text holds these


@dataclass(frozen=True, slots=True)
class Found:
    """A search hit chosen: the chat to open, and the message to show in it."""

    session_id: int
    message_id: int


class SessionsScreen(ModalScreen[int | Found | None]):
    """Dismissed with the id of the session to open, a `Found` message, or None."""

    AUTO_FOCUS = "#session-list"  # the keys act on the chats; / goes to the search field

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Close"),
        Binding("slash", "search", "Search every chat"),
        Binding("r", "rename", "Rename"),
        Binding("d", "delete", "Delete"),
        Binding("e", "export", "Export to Markdown"),
    ]

    def __init__(self, store: Store, export_dir: Path) -> None:
        super().__init__()
        self.store = store
        self.export_dir = export_dir
        self._to_delete: int | None = None  # asked once
        self._found: dict[int, SearchHit] = {}  # while searching: each chat's best hit

    def compose(self) -> ComposeResult:
        with Vertical(id="sessions"):
            yield Static("Chats — enter open · / search · r rename · d d delete · e export · "
                         "esc close", classes="title")
            yield Input(placeholder="Search every chat (/)", id="search")
            yield OptionList(id="session-list")
            yield Input(placeholder="New title, then enter", id="rename")

    def on_mount(self) -> None:
        self.query_one("#rename", Input).display = False
        self._refresh()

    def _refresh(self, highlight: int = 0, session_id: int | None = None) -> None:
        """List the chats again, highlighting `session_id` wherever it now is, else the
        chat at index `highlight`."""
        self._to_delete = None
        options = self.query_one(OptionList)
        options.clear_options()
        query = plain_query(self.query_one("#search", Input).value)
        if query:
            ids = self._list_found(options, query)
        else:
            self._found = {}
            sessions = self.store.sessions()
            for s in sessions:
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.updated))
                options.add_option(Option(f"{s.title}  ({s.messages} messages, {when})",
                                          id=str(s.id)))
            ids = [s.id for s in sessions]
        if session_id in ids:
            highlight = ids.index(session_id)
        if options.option_count:
            options.highlighted = min(highlight, options.option_count - 1)
        if not self.query_one("#search", Input).has_focus:
            options.focus()

    def _list_found(self, options: OptionList, query: str) -> list[int]:
        """List the chats with a message matching `query`, each with its best match."""
        self._found = {}
        for hit in self.store.search(query, limit=SEARCH_LIMIT, mark=_MARK):
            self._found.setdefault(hit.session_id, hit)
        for hit in self._found.values():
            options.add_option(Option(_found_prompt(hit), id=str(hit.session_id)))
        if not self._found:
            options.add_option(Option(Text("No chat matches.", style="italic"), disabled=True))
        return list(self._found)

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "search":
            self._refresh()

    def on_key(self, event: events.Key) -> None:
        """Down from the search field goes to the chats it found."""
        if event.key == "down" and self.query_one("#search", Input).has_focus:
            event.stop()
            self.query_one(OptionList).focus()

    def _selected(self) -> int | None:
        options = self.query_one(OptionList)
        if options.highlighted is None:
            return None
        option_id = options.get_option_at_index(options.highlighted).id
        return int(option_id) if option_id else None

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self._open(int(event.option.id) if event.option.id else None)

    def _open(self, session_id: int | None) -> None:
        hit = self._found.get(session_id) if session_id is not None else None
        self.dismiss(Found(hit.session_id, hit.message_id) if hit else session_id)

    def action_rename(self) -> None:
        if self._selected() is None:
            return
        field = self.query_one("#rename", Input)
        field.display = True
        field.value = self.store.title(self._selected() or 0)
        field.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "search":  # enter opens the best match
            if self._found:
                self._open(self._selected())
            return
        session_id = self._selected()
        if session_id is not None and event.value.strip():
            self.store.rename(session_id, event.value)
        event.input.display = False
        self._refresh(session_id=session_id)

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


def _found_prompt(hit: SearchHit) -> Text:
    """A chat found by a search: its title, and the match in the message it is in."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(hit.created))
    who = "You" if hit.role == "user" else "Breeze" if hit.role == "assistant" else hit.role
    if hit.voice:
        who += f" ({hit.voice})"
    prompt = Text(f"{hit.title}  ({when})\n")
    prompt.append(f"  {who}: ", style="dim")
    start, end = _MARK
    for n, part in enumerate(" ".join(hit.snippet.split()).split(start)):
        matched, _, rest = part.partition(end) if n else ("", "", part)
        prompt.append(matched, style="bold reverse")
        prompt.append(rest)
    return prompt
