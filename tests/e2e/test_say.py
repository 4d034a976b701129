"""`breeze say`, run as a user runs it: heard through the (null) speaker, or written to a WAV."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from breeze.engine.audio import read_wav
from breeze.runners.audio_out import Player
from breeze.runners.piper_tts import INSTALL_HINT
from tests.runners.test_audio_out import MonitorRecorder, tts_sink, warm  # noqa: F401 (fixture)
from tests.runners.test_pyttsx3 import KEY_WORDS, SPOKEN, hear

BREEZE = str(Path(sys.executable).with_name("breeze"))
LONG = " ".join(f"This is sentence number {n}, and it is here to take some time." for n in
                range(1, 30))


# `breeze` as installed without the neural-voice extra
WITHOUT_PIPER = [sys.executable, "-c", "import sys; sys.modules['piper'] = None; "
                 "from breeze.tui.cli import main; sys.argv[0] = 'breeze'; main()"]

# first: `env` (tests/e2e/conftest.py) copies the environment with the test sink as speaker
pytestmark = pytest.mark.usefixtures("tts_sink")


@pytest.fixture
def speaker():
    """Keeps the sink awake (as a desktop's sound server does) so the monitor records."""
    with Player("pulse") as player:
        yield warm(player)


def say(*args: str, env, input: str | None = None, timeout: float = 120):
    return subprocess.run([BREEZE, "say", *args], capture_output=True, text=True, env=env,
                          input=input, timeout=timeout)


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.mark.usefixtures("speaker")
def test_say_is_heard(env):
    with MonitorRecorder() as recorder:
        out = say(SPOKEN, env=env)
        assert out.returncode == 0, out.stderr
        assert out.stdout == "" and out.stderr == ""  # no bar off a terminal, no ALSA noise
        recorder.wait_quiet()
    assert KEY_WORDS <= set(recorder.transcript().split()), recorder.transcript()
    spans = recorder.spans(bridge_ms=600)
    assert len(spans) == 1 and 2000 < spans[0][1] - spans[0][0] < 5000, spans


def test_out_writes_a_wav_a_recognizer_understands(env, tmp_path):
    (tmp_path / "out").mkdir()
    wav = tmp_path / "out" / "speech.wav"
    out = say(SPOKEN, "--out", str(wav), env=env)
    assert out.returncode == 0, out.stderr
    pcm = read_wav(wav)
    assert pcm.sample_rate == 22050 and 2000 < pcm.duration_ms < 5000
    assert KEY_WORDS <= set(hear(pcm.data, pcm.sample_rate).split())
    assert list(wav.parent.iterdir()) == [wav]  # no .part left behind


def test_json_lines_stdin_voice_and_rate(env, tmp_path):
    out = say("-", "--json", "--out", str(tmp_path / "a.wav"), "--voice", "English (Great Britain)",
              env=env, input="First sentence here. Second sentence here.")
    assert out.returncode == 0, out.stderr
    rows = json_lines(out.stdout)
    assert all(r["partial"] for r in rows[:-1]) and rows[-1]["partial"] is False
    for row in rows:
        assert set(row) == {"request_id", "partial", "outputs", "metadata", "error"}
        assert isinstance(row["outputs"]["audio"], int)  # bytes are shown as their length
    assert rows[0]["metadata"]["voice_used"] == "gmw/en"
    assert rows[-1]["metadata"]["total_sentences"] == 2
    assert rows[-1]["metadata"]["finish_reason"] == "stop"
    slow, fast = tmp_path / "slow.wav", tmp_path / "fast.wav"
    assert say("Good morning to you.", "--rate", "100", "--out", str(slow), env=env).returncode == 0
    assert say("Good morning to you.", "--rate", "300", "--out", str(fast), env=env).returncode == 0
    assert read_wav(slow).duration_ms > 2 * read_wav(fast).duration_ms


def test_list_voices(env):
    out = say("--list-voices", "--json", env=env)
    assert out.returncode == 0, out.stderr
    voices = json_lines(out.stdout)
    assert {"gmw/en-us", "ko"} <= {v["id"] for v in voices}
    table = say("--list-voices", env=env)
    assert table.returncode == 0 and "English (America)" in table.stdout


@pytest.mark.parametrize(
    ("args", "extra_env", "code", "says"),
    [
        (["Hi.", "--voice", "no-such-voice"], {}, "E400", "gmw/en-us"),
        ([""], {}, "E400", "empty"),
        (["...!?"], {}, "E400", "nothing to speak"),
        ([], {}, "E400", "nothing to say"),
        (["Hi.", "--rate", "5"], {}, "E400", "rate"),
        (["Hi.", "--device", "no such speaker"], {}, "E501", "output device"),
        (["Hi."], {"PULSE_SERVER": "unix:/nonexistent/breeze"}, "E501", "no audio output"),
        (["Hi.", "--out", "/nonexistent/dir/x.wav"], {}, "E400", "cannot write"),
        (["Hi.", "--runner", "nope"], {}, "E404", "nope"),
    ],
)
def test_errors_exit_non_zero_with_the_code(env, args, extra_env, code, says):
    out = say(*args, env={**env, **extra_env})
    assert out.returncode == 1
    assert out.stderr.startswith(f"{code}: ") and says in out.stderr, out.stderr
    assert len(out.stderr.splitlines()) == 1


@pytest.mark.usefixtures("speaker")
@pytest.mark.parametrize("runner", [[], ["--runner", "piper"]],
                         ids=["pyttsx3", "piper"])
def test_ctrl_c_stops_the_sound_at_once_and_exits_130(env, runner):
    with MonitorRecorder() as recorder:
        proc = subprocess.Popen([BREEZE, "say", LONG, "--json", *runner], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        first_at = time.perf_counter()
        assert first["outputs"]["audio"] > 0
        time.sleep(1.5)
        interrupted_at = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=10)
        assert time.perf_counter() - interrupted_at < 2
        recorder.wait_quiet()
    assert proc.returncode == 130, err
    last = json_lines(rest)[-1]
    assert last["partial"] is False and last["metadata"]["finish_reason"] == "cancelled"
    spans = recorder.spans(bridge_ms=1000)
    heard_ms = spans[-1][1] - spans[0][0]
    # the sound cannot start before the first result: it lasted at most until the signal
    assert heard_ms <= (interrupted_at - first_at) * 1000 + 100, heard_ms
    assert last["metadata"]["cumulative_duration_ms"] > heard_ms  # much more was not played


@pytest.mark.usefixtures("speaker")
def test_a_progress_bar_on_a_terminal(env):
    main, secondary = pty.openpty()
    proc = subprocess.Popen([BREEZE, "say", "First sentence. Second sentence."],
                            stdout=subprocess.DEVNULL, stderr=secondary, env=env)
    os.close(secondary)
    screen = b""
    while True:
        ready, _, _ = select.select([main], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        screen += chunk
    os.close(main)
    assert proc.wait(timeout=30) == 0
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", screen.decode("utf-8", "replace"))
    assert "sentence 1/2" in text and "sentence 2/2" in text
    assert re.search(r"\d\.\d s / \d\.\d s", text)


@pytest.mark.usefixtures("speaker")
def test_the_neural_voice_chosen_by_name_is_heard(env):
    with MonitorRecorder() as recorder:
        out = say(SPOKEN, "--voice", "joe", env=env)
        assert out.returncode == 0, out.stderr
        assert out.stdout == "" and out.stderr == ""
        recorder.wait_quiet()
    assert KEY_WORDS <= set(recorder.transcript().split()), recorder.transcript()


def test_voices_of_every_runner_are_listed_and_each_picks_its_runner(env, tmp_path):
    voices = json_lines(say("--list-voices", "--json", env=env).stdout)
    by_id = {v["id"]: v for v in voices}
    assert by_id["en_US-joe-medium"]["runner"] == "piper"
    assert by_id["gmw/en-us"]["runner"] == "pyttsx3"
    assert "en_US-joe-medium" in say("--list-voices", env=env).stdout
    for voice, runner in (("en_US-joe-medium", "piper"), ("gmw/en-us", "pyttsx3"),
                          (by_id["en_US-joe-medium"]["path"], "piper")):
        out = say("Hello.", "--voice", voice, "--json", "--out", str(tmp_path / "x.wav"),
                  env=env)
        assert out.returncode == 0, out.stderr
        assert json_lines(out.stdout)[-1]["metadata"]["runner_name"] == runner, voice


def test_without_the_extra_piper_says_how_to_install_it_and_the_rest_works(env, tmp_path):
    def run(*args: str):
        return subprocess.run([*WITHOUT_PIPER, "say", *args], capture_output=True, text=True,
                              env=env, timeout=120)

    out = run("Hi.", "--runner", "piper")
    assert out.returncode == 1 and out.stderr.startswith("E501: ") and INSTALL_HINT in out.stderr
    voices = json_lines(run("--list-voices", "--json").stdout)
    assert voices and {v["runner"] for v in voices} == {"pyttsx3"}
    out = run("Hello.", "--out", str(tmp_path / "x.wav"))
    assert out.returncode == 0 and out.stderr == "", out.stderr
