from __future__ import annotations

import pytest

from breeze.engine import Engine, EngineSettings
from breeze.runners import builtin_registry
from breeze.tui.app import create_app
from breeze.tui.store import Store


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "sessions.sqlite3")
    yield store
    store.close()


@pytest.fixture
def make_app(store, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DOCUMENTS_DIR", str(tmp_path / "docs"))
    monkeypatch.setenv("BREEZE_CONFIG_DIR", str(tmp_path / "config"))

    def make(session_id: int | None = None, engine: Engine | None = None):
        engine = engine or Engine(builtin_registry(), EngineSettings())
        return create_app(engine, store, session_id)

    return make


async def wait_for(pilot, condition, within: float = 30.0) -> None:
    """Let the app run until `condition()` holds (real model: no fixed sleeps)."""
    steps = int(within / 0.05)
    for _ in range(steps):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not reached in time")


async def played(pilot, player, within: float = 60.0) -> None:
    """Let the app run while a recording plays into its microphone (waiting for the player
    process without the app would stop it from hearing)."""
    await wait_for(pilot, lambda: player.poll() is not None, within=within)
    assert player.returncode == 0, f"the player failed: {player.returncode}"


def finished(view) -> bool:
    """The reply has ended by itself: complete, or stopped at the length limit that the
    tests' small max_tokens set."""
    from breeze.tui.conversation import LENGTH_NOTE

    return view.state == "complete" or (view.state == "stopped" and view.error == LENGTH_NOTE)
