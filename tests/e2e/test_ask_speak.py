"""`breeze ask --speak`: the reply is printed and heard as it is written."""

from __future__ import annotations

import subprocess

import pytest

from runners.audio_out import Player
from tests.runners.test_audio_out import MonitorRecorder, tts_sink, warm  # noqa: F401 (fixture)

from .test_say import BREEZE

pytestmark = pytest.mark.usefixtures("tts_sink")


@pytest.fixture
def speaker():
    with Player("pulse") as player:
        yield warm(player)


@pytest.mark.usefixtures("speaker")
def test_ask_speak_prints_and_is_heard():
    with MonitorRecorder() as recorder:
        out = subprocess.run(
            [BREEZE, "ask", "Name two colours. Then name two animals.", "--speak",
             "-p", "max_tokens=40", "-p", "temperature=0"],
            capture_output=True, text=True, timeout=120,
        )
        assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
    assert recorder.spans(bridge_ms=600), "nothing was heard"


def test_ask_speak_without_a_speaker_is_e501():
    out = subprocess.run(
        [BREEZE, "ask", "hi", "--speak"], capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PULSE_SERVER": "unix:/nonexistent/breeze",
             "HOME": "/nonexistent"},
    )
    assert out.returncode == 1
    assert out.stderr.startswith("E501: "), out.stderr
