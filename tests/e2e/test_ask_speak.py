"""`breeze ask --speak`: the reply is printed and heard as it is written."""

from __future__ import annotations

import subprocess

import pytest

from breeze.runners.audio_out import Player
from tests.runners.test_audio_out import MonitorRecorder, tts_sink, warm  # noqa: F401 (fixture)

from .test_say import BREEZE

pytestmark = pytest.mark.usefixtures("tts_sink")


@pytest.fixture
def speaker():
    with Player("pulse") as player:
        yield warm(player)


@pytest.mark.usefixtures("speaker")
@pytest.mark.parametrize("voice", [[], ["--voice", "en_US-joe-medium"]],
                         ids=["default voice", "a voice of another runner"])
def test_ask_speak_prints_and_is_heard(voice):
    with MonitorRecorder() as recorder:
        out = subprocess.run(
            [BREEZE, "ask", "Name two colours. Then name two animals.", "--speak", *voice,
             "-p", "max_tokens=40", "-p", "temperature=0"],
            capture_output=True, text=True, timeout=120,
        )
        assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
    assert recorder.spans(bridge_ms=600), "nothing was heard"


def test_ask_speak_without_a_speaker_still_prints_the_reply(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PULSE_SERVER": "unix:/nonexistent/breeze",
           "HOME": str(tmp_path)}
    out = subprocess.run(
        [BREEZE, "ask", "What is the capital of France?", "--speak", "-p", "temperature=0",
         "-p", "max_tokens=30"], capture_output=True, text=True, timeout=120, env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "Paris" in out.stdout
    assert out.stderr.startswith("breeze: warning: the reply is printed, not spoken: E501: ")
