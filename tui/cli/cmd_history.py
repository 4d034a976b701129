"""`breeze history search QUERY`: full-text search over every saved chat.

The query is in SQLite FTS5's syntax: words (all must match), "a phrase", prefix*, OR, NOT,
and parentheses. Each hit prints the chat, the message and its text around the match, the
matched words in [brackets]; with --json, one object a line: `session_id`, `title`,
`message_id`, `role`, `snippet`, `created` (ISO 8601, UTC) and `voice` ("dictated" for a
prompt said into the microphone, "spoken" for a reply read aloud, else null).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime

import typer

from breeze.engine import BreezeError

from ..store import SearchHit, Store
from ._output import fail

history = typer.Typer(no_args_is_help=True, rich_markup_mode=None)


def register(app: typer.Typer) -> None:
    app.add_typer(history, name="history", help="Search your saved chats.")


@history.command("search")
def search(
    query: str = typer.Argument(..., help='Words to find; FTS5 syntax: "a phrase", pre*, OR, '
                                          "NOT."),
    json_: bool = typer.Option(False, "--json", help="One JSON object a line, one per hit."),
    limit: int = typer.Option(20, "--limit", min=1, help="At most this many hits, best first."),
) -> None:
    """Find the messages of every saved chat that match QUERY, best first."""
    try:
        store = Store()
    except BreezeError as exc:
        raise fail(exc.error.code, exc.error.message) from None
    try:
        for problem in store.problems:
            typer.echo(f"breeze: warning: {problem}", err=True)
        try:
            hits = store.search(query, limit=limit)
        except BreezeError as exc:
            raise fail(exc.error.code, exc.error.message) from None
    finally:
        store.close()
    for hit in hits:
        if json_:
            sys.stdout.write(json.dumps(_as_json(hit), ensure_ascii=False) + "\n")
        else:
            _print(hit)
    if not hits and not json_:
        typer.echo(f"No saved chat matches {query!r}.", err=True)


def _as_json(hit: SearchHit) -> dict[str, object]:
    return {
        "session_id": hit.session_id,
        "title": hit.title,
        "message_id": hit.message_id,
        "role": hit.role,
        "snippet": hit.snippet,
        "created": datetime.fromtimestamp(hit.created, UTC).isoformat(timespec="seconds"),
        "voice": hit.voice,
    }


def _print(hit: SearchHit) -> None:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(hit.created))
    who = "you" if hit.role == "user" else "Breeze" if hit.role == "assistant" else hit.role
    if hit.voice:
        who += f", {hit.voice}"
    typer.echo(f"{hit.title}  (chat {hit.session_id}, message {hit.message_id}, {when})")
    typer.echo(f"  {who}: {' '.join(hit.snippet.split())}")
