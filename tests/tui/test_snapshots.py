"""How the main screens look (SVG snapshots; textual is pinned in pyproject.toml).

After an intended change of look: `.venv/bin/pytest tests/tui/test_snapshots.py
--snapshot-update`, then review the SVGs in tests/tui/__snapshots__/."""

from __future__ import annotations

import time

from breeze.tui.widgets.prompt import PromptInput

from .conftest import wait_for

SIZE = (90, 28)


def _prefilled(store) -> int:
    session = store.new_session("Cooking with Breeze")
    store.add(session, "user", "How do I boil an egg?")
    store.add(
        session,
        "assistant",
        "1. Put the egg in **boiling** water.\n2. Wait *nine* minutes.\n\n```text\ntimer 9m\n```",
    )
    store.add(session, "user", "And a soft one?")
    store.add(session, "assistant", "Take it out after six", "stopped")
    return session


async def ready(pilot) -> None:
    """The model is loaded, and no cursor is drawn (its blink would differ per run)."""
    await wait_for(pilot, lambda: pilot.app.chat.status.state == "ready")
    pilot.app.chat.query_one(PromptInput).cursor_blink = False
    pilot.app.set_focus(None)
    await pilot.pause(0.2)


def _when_ready(app_holder):
    async def run_before(pilot) -> None:
        app = pilot.app
        app_holder.append(app)
        await ready(pilot)

    return run_before


def test_chat_screen(snap_compare, make_app, store):
    app = make_app(_prefilled(store))
    assert snap_compare(app, terminal_size=SIZE, run_before=_when_ready([]))


def test_help_screen(snap_compare, make_app, store):
    app = make_app()

    async def run_before(pilot) -> None:
        await ready(pilot)
        await pilot.press("f1")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_sessions_screen(snap_compare, make_app, store, monkeypatch):
    _prefilled(store)
    store.rename(store.new_session(), "Empty chat")
    store._db.execute("UPDATE sessions SET updated = 1767225600 + 3600 * id")  # fixed dates
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    app = make_app()

    async def run_before(pilot) -> None:
        await ready(pilot)
        await pilot.press("ctrl+o")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
