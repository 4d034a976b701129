"""`breeze dictate` as a user runs it: speech played into a PulseAudio null sink is what the
command hears from the sink's monitor, its default microphone."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from breeze.engine.audio import Pcm
from tests.e2e.test_cli import BREEZE, breeze, json_lines
from tests.runners import test_audio_in
from tests.runners.test_audio_in import play, recording_streams
from tests.runners.test_pocketsphinx import KEYWORDS, english

asr_sink = test_audio_in.asr_sink  # fixture: the microphone is this module's own null sink


def pulse_client_env() -> dict[str, str]:
    """Where PulseAudio is, stated outright: libpulse finds its socket and cookie through
    XDG_CONFIG_HOME, which the tests move."""
    info = subprocess.run(["pactl", "info"], capture_output=True, text=True, check=True).stdout
    server = next(line.split(":", 1)[1].strip() for line in info.splitlines()
                  if line.startswith("Server String:"))
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return {"PULSE_SERVER": server, "PULSE_COOKIE": str(config / "pulse" / "cookie")}


@pytest.fixture
def env(tmp_path, asr_sink):
    """A fresh XDG home (English: the packaged Whisper model answers) and the test sink."""
    env = {**os.environ, **pulse_client_env(), "PULSE_SOURCE": f"{asr_sink}.monitor"}
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        env[var] = str(tmp_path / var.lower())
    return env


def heard(text: str) -> set[str]:
    """The words of a transcript, lowercase and without punctuation."""
    return set(re.sub(r"[^\w\s']", " ", text).lower().split())


def speak_when_listening(
    proc: subprocess.Popen[str], pcm: Pcm, path, sink: str
) -> subprocess.Popen[bytes]:
    """Wait until the command records, then play the speech into the sink."""
    deadline = time.monotonic() + 60
    while not recording_streams(sink):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "breeze dictate never opened the microphone"
        time.sleep(0.1)
    return play(pcm, path, sink)


def test_dictate_json_streams_the_live_transcript(env, asr_sink, tmp_path):
    proc = subprocess.Popen([BREEZE, "dictate", "--json", "--seconds", "14"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    player = speak_when_listening(proc, english(), tmp_path / "en.wav", asr_sink)
    out, err = proc.communicate(timeout=60)
    player.wait(timeout=10)
    assert proc.returncode == 0, err
    rows = json_lines(out)
    final = rows[-1]
    assert not final["partial"] and final["metadata"]["finish_reason"] == "length"
    assert final["metadata"]["input"] == "microphone"
    assert final["metadata"]["runner_name"] == "whisper"
    assert len(heard(final["outputs"]["text"]) & KEYWORDS) >= 4, final["outputs"]["text"]
    assert any(r["metadata"].get("is_final") for r in rows[:-1])
    assert all("level_dbfs" in r["metadata"] for r in rows[:-1])


def test_ctrl_c_stops_and_prints_the_whole_transcript(env, asr_sink, tmp_path):
    proc = subprocess.Popen([BREEZE, "dictate"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    player = speak_when_listening(proc, english(), tmp_path / "en.wav", asr_sink)
    player.wait(timeout=30)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert err == ""
    lines = out.splitlines()
    assert len(lines) >= 3, out  # one line an utterance
    assert len(heard(out) & KEYWORDS) >= 4, out


def test_ctrl_c_in_json_mode_ends_with_a_cancelled_terminal_result(env):
    proc = subprocess.Popen([BREEZE, "dictate", "--json"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())  # the microphone is open
    assert first["metadata"]["input"] == "microphone"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    rows = json_lines(out)
    assert proc.returncode == 0
    assert rows[-1]["partial"] is False and rows[-1]["metadata"]["finish_reason"] == "cancelled"
    assert rows[-1]["outputs"] == {"text": ""}


def test_an_unknown_device_is_e501(env):
    out = breeze("dictate", "--device", "no-such-microphone", "--seconds", "1", env=env)
    assert out.returncode == 1
    assert out.stderr.startswith("E501: no input device 'no-such-microphone'"), out.stderr


def test_no_audio_system_is_e501_not_a_hang(env):
    started = time.monotonic()
    out = breeze("dictate", "--seconds", "5", env={**env, "PULSE_SERVER": "unix:/nonexistent"},
                 timeout=60)
    assert out.returncode == 1 and out.stderr.startswith("E501: "), out.stderr
    assert time.monotonic() - started < 30


def test_list_devices(env):
    out = breeze("dictate", "--list-devices", env=env)
    assert out.returncode == 0
    assert any(line.startswith("*") and "default" in line for line in out.stdout.splitlines())
    rows = json_lines(breeze("dictate", "--list-devices", "--json", env=env).stdout)
    assert {"pulse", "default"} <= {r["name"] for r in rows}



def run_on_a_terminal(args: list[str], env: dict[str, str], pcm: Pcm, path, sink: str) -> str:
    """Run with stdout on a pseudo-terminal, playing `pcm` once it listens; what it drew."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, env=env, stdout=slave, stderr=subprocess.PIPE, text=True)
    os.close(slave)
    player = speak_when_listening(proc, pcm, path, sink)
    drawn = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the command exited and closed the terminal
                break
            if not chunk:
                break
            drawn += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    player.wait(timeout=10)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and err == "", err
    return drawn.decode()


def test_on_a_terminal_the_utterance_in_progress_is_rewritten_in_place(env, asr_sink, tmp_path):
    drawn = run_on_a_terminal([BREEZE, "dictate", "--seconds", "14"], env, english(),
                              tmp_path / "en.wav", asr_sink)
    assert drawn.count("\r\x1b[K") > 5  # the line in progress, redrawn as words come
    committed = [line.rsplit("\x1b[K", 1)[-1] for line in drawn.split("\r\n") if line]
    assert len(committed) >= 3 and "\x1b" not in "".join(committed)
    assert len(heard(" ".join(committed)) & KEYWORDS) >= 4, committed
