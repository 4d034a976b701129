from __future__ import annotations

import os

import pytest


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """The user's environment with fresh XDG directories: no saved config, chats or logs."""
    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        env[var] = str(tmp_path / var.lower())
    return env
