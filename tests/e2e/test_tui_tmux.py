"""The installed `breeze` in a real terminal (tmux): ask, stop with Esc, ask again. The
terminal is 24 rows: the first reply fills it, so the second answer shows only if the chat
follows it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BREEZE = str(Path(sys.executable).with_name("breeze"))


def tmux_command(session: str, *args: str) -> list[str]:
    """A tmux server of the test's own (-L): no other session, no server shutting down."""
    return ["tmux", "-L", session, *args]


@pytest.fixture
def tmux(tmp_path):
    yield from _session(tmp_path)


@pytest.fixture
def tmux_slow_load(tmp_path):
    """The app on a model assembled on first use (fresh cache): it loads for seconds."""
    config = tmp_path / "config" / "breeze"
    config.mkdir(parents=True)
    (config / "config.toml").write_text('[runners.llama_cpp]\nmodel = "gemma3-270m"\n')
    yield from _session(tmp_path)


@pytest.fixture
def tmux_present(tmp_path):
    yield from _session(tmp_path, "--present")


def _session(tmp_path, *args: str) -> Iterator[str]:
    xdg = " ".join(
        f"XDG_{d.upper()}_HOME={tmp_path / d}" for d in ("config", "data", "cache", "state")
    )
    with terminal(f"env {xdg} {BREEZE} {' '.join(args)}", dict(os.environ), 100, 24) as name:
        yield name


@contextmanager
def terminal(command: str, env: dict[str, str], width: int, height: int) -> Iterator[str]:
    """`command` running in a tmux session of its own (its name), in the environment `env`."""
    assert shutil.which("tmux"), "tmux is not installed: run `make test`"
    name = f"breeze-{uuid.uuid4().hex[:8]}"
    # A native library loaded by an earlier test may have set COLUMNS and LINES under
    # Python's os.environ; they would override the pane's real size.
    tmux_env = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}
    subprocess.run(tmux_command(name, "new-session", "-d", "-s", name, "-x", str(width),
                                "-y", str(height), command), check=True, env=tmux_env)
    try:
        yield name
    finally:
        subprocess.run(tmux_command(name, "kill-server"), check=False)


def screen(session: str) -> str:
    return subprocess.run(tmux_command(session, "capture-pane", "-p", "-t", session),
                          capture_output=True, text=True, check=True).stdout


def keys(session: str, *keys: str) -> None:
    subprocess.run(tmux_command(session, "send-keys", "-t", session, *keys), check=True)


def wait_screen(session: str, predicate, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = screen(session)
        if predicate(text):
            return text
        time.sleep(0.1)
    raise AssertionError(f"screen never matched:\n{screen(session)}")


def reply_lines(text: str) -> str:
    """The chat area: everything above the prompt box."""
    return text.split("▔")[0]


def second_reply(text: str) -> str:
    return reply_lines(text).rsplit("Breeze", 1)[-1]


def has_text(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


def test_ask_stop_with_esc_and_ask_again(tmux):
    wait_screen(tmux, lambda s: "● ready" in s)
    keys(tmux, "Write a very long story about a lighthouse keeper and the sea.", "Enter")
    wait_screen(tmux, lambda s: "● generating" in s)
    time.sleep(0.5)
    keys(tmux, "Escape")
    stopped = wait_screen(tmux, lambda s: "stopped — ctrl+r regenerate" in s, 20)
    time.sleep(1.0)
    assert reply_lines(screen(tmux)) == reply_lines(stopped), "the reply went on after Esc"
    assert "● stopped" in stopped

    keys(tmux, "In one sentence: what is the capital of France?", "Enter")
    # ready only at the second reply's end; the answer is read from the screen, not assumed
    answered = wait_screen(tmux, lambda s: "● ready" in s and has_text(second_reply(s)), 90)
    assert "capital of France?" in answered


def test_the_first_screen_is_whole_while_the_model_loads(tmux_slow_load, tmp_path):
    session = tmux_slow_load
    # the title and the prompt box, drawn while the model still loads (Textual's very first
    # frame may come before the title's: the next one has it)
    wait_screen(session, lambda s: "loading model" in s, 30)
    wait_screen(session, lambda s: "loading model" in s and "New chat" in s and "▔" in s, 30)
    keys(session, "hello while loading")
    echoed = wait_screen(session, lambda s: "hello while loading" in s, 10)
    assert "loading model" in echoed, "typed text shows before the model is ready"
    wait_screen(session, lambda s: "● ready" in s, 120)
    log = (tmp_path / "state" / "breeze" / "log" / "breeze.log").read_text()
    assert "llama" in log  # the native library's lines are in the log...
    assert "\x1b" not in log, "the screen was drawn into the log file"  # ...and no screen


def test_present_opens_on_captions_that_follow_the_chat(tmux_present):
    captions = wait_screen(tmux_present, lambda s: "YOU" in s and "BREEZE" in s)
    assert "● " not in captions and "F1 help" not in captions, "nothing but the captions"
    keys(tmux_present, "F5")
    wait_screen(tmux_present, lambda s: "● ready" in s)
    keys(tmux_present, "In one sentence: what is the capital of France?", "Enter")
    wait_screen(tmux_present, lambda s: "capital of France?" in s and "● ready" in s
                and "TTFT" in s, 90)  # the reply has ended
    keys(tmux_present, "F5")
    shown = wait_screen(tmux_present, lambda s: "YOU" in s and "capital of France?" in s)
    said = shown.split("BREEZE", 1)[1]
    assert has_text(said), shown
