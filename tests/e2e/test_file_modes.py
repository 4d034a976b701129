"""The installed `breeze` over a broken chat database and an older, world-readable log: it
starts, keeps the broken file, and leaves nothing of the user's words readable by others."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import uuid

from .test_tui_tmux import BREEZE, tmux_command, wait_screen

GARBAGE = b"not a database, and still nobody else's business\n" * 100


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_breeze_starts_over_a_broken_database_and_keeps_files_private(tmp_path):
    assert shutil.which("tmux"), "tmux is not installed: run `make test`"
    data = tmp_path / "data" / "breeze"
    data.mkdir(parents=True)
    (data / "sessions.sqlite3").write_bytes(GARBAGE)
    os.chmod(data / "sessions.sqlite3", 0o644)
    old_log = tmp_path / "oldlogs" / "breeze.log"
    old_log.parent.mkdir()
    old_log.write_text("an older Breeze logged the user's words here\n")
    os.chmod(old_log, 0o644)

    name = f"breeze-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    xdg = " ".join(f"XDG_{d.upper()}_HOME={tmp_path / d}" for d in ("config", "data", "cache",
                                                                      "state"))
    try:
        subprocess.run(tmux_command(name, "new-session", "-d", "-s", name, "-x", "100", "-y",
                                    "24", f"env {xdg} {BREEZE}"), check=True, env=env)
        wait_screen(name, lambda s: "● ready" in s)
        [moved] = data.glob("sessions.sqlite3.broken-*")
        assert moved.read_bytes() == GARBAGE
        assert mode(moved) == mode(data / "sessions.sqlite3") == 0o600
        logs = tmp_path / "state" / "breeze" / "log"
        assert mode(logs / "breeze.log") == 0o600
        assert mode(logs) == mode(logs.parent) == mode(tmp_path / "state") == 0o700
    finally:
        subprocess.run(tmux_command(name, "kill-server"), check=False)
    env = {**env, "BREEZE_LOG_DIR": str(old_log.parent)}
    subprocess.run([BREEZE, "--version"], env=env, check=True, capture_output=True)
    assert mode(old_log) == 0o600
    assert "an older Breeze" in old_log.read_text()
