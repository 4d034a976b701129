from __future__ import annotations

import pytest

from engine import Engine, EngineSettings
from runners import builtin_registry
from tui.app import create_app
from tui.store import Store


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
