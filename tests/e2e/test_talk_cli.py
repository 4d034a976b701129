"""`breeze talk` and the app's talk mode as a user runs them, with the null sink as the room:
the sink's monitor is the microphone, so it hears everything Breeze says (a perfect echo path),
and recordings of human speech played into the same sink are the user, cutting in when the
test says so."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cli import BREEZE
from tests.e2e.test_dictate import heard, pulse_client_env
from tests.e2e.test_tui_tmux import keys, terminal, wait_screen
from tests.runners import test_audio_in
from tests.runners.test_audio_in import play
from tests.runners.test_whisper_speech import Clip, human_speech

asr_sink = test_audio_in.asr_sink  # fixture: a null sink of the module's own

Event = dict[str, Any]


@pytest.fixture
def env(tmp_path, asr_sink):
    """Fresh XDG dirs; Breeze speaks into the test's sink and hears its monitor."""
    env = {**os.environ, **pulse_client_env(), "PULSE_SOURCE": f"{asr_sink}.monitor",
           "PULSE_SINK": asr_sink}
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        env[var] = str(tmp_path / var.lower())
    return env


def clips() -> dict[str, Clip]:
    return {c.name.rsplit("-", 1)[-1]: c for c in human_speech() if "austen" in c.name}


class Talking:
    """`breeze talk --json` running, its events read as they come."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([BREEZE, "talk", "--json", *args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.events: list[Event] = []
        self._queue: queue.Queue[Event | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put({**json.loads(line), "at": round(time.monotonic(), 2)})
        self._queue.put(None)

    def wait_for(self, test: Callable[[Event], bool], timeout: float = 120.0) -> Event:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if test(event):
                return event
        while True:
            try:
                event = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"timed out; events so far: {self.events}") from None
            if event is None:
                raise AssertionError(f"breeze talk ended: {self.events} {self.stderr()}")
            self.events.append(event)
            if test(event):
                return event

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e["event"] == kind]

    def stderr(self) -> str:
        self.proc.wait(timeout=60)
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self._reader.join(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def talking(env) -> Iterator[Callable[[list[str]], Talking]]:
    started: list[Talking] = []

    def start(args: list[str]) -> Talking:
        started.append(Talking(args, env))
        return started[-1]

    yield start
    for talk in started:
        talk.close()


def event(kind: str, **fields: Any) -> Callable[[Event], bool]:
    return lambda e: e["event"] == kind and all(e.get(k) == v for k, v in fields.items())


def say(clip: Clip, tmp_path: Path, sink: str) -> subprocess.Popen[bytes]:
    from breeze.engine.audio import Pcm

    return play(Pcm(clip.pcm, 16000), tmp_path / f"{clip.name}.wav", sink)


def answered(after: int = 0) -> Callable[[Event], bool]:
    """A turn after turn `after` that Breeze answered to its end."""
    return lambda e: (e["event"] == "turn" and e["turn"] > after
                      and e["finish_reason"] in ("stop", "length"))


def test_three_spoken_turns_with_a_barge_in_and_no_self_interruption(talking, asr_sink,
                                                                     tmp_path):
    spoken = clips()
    talk = talking(["-p", "max_tokens=70", "-p", "temperature=0"])
    talk.wait_for(event("state", state="listening"), timeout=180)  # the models are loaded

    say(spoken["0880"], tmp_path, asr_sink).wait(timeout=30)
    talk.wait_for(event("speaking", turn=1, index=1))
    cut_in_from = time.monotonic()
    cutting_in = say(spoken["0930"], tmp_path, asr_sink)  # the user cuts in
    interrupted = talk.wait_for(event("interrupted", turn=1))
    first = talk.wait_for(event("turn", turn=1))
    assert first["finish_reason"] == "interrupted" and first["reply"] == interrupted["spoken"]
    assert interrupted["barge_in_ms"] is not None and interrupted["unspoken"]
    cutting_in.wait(timeout=30)
    cut_in_to = time.monotonic()

    second = talk.wait_for(answered(after=1))
    say(spoken["0870"], tmp_path, asr_sink).wait(timeout=30)
    third = talk.wait_for(answered(after=second["turn"]))
    talk.proc.send_signal(signal.SIGINT)  # Ctrl+C
    talk.wait_for(event("end", reason="stopped"))
    assert talk.proc.wait(timeout=30) == 0, talk.stderr()

    # what was said over Breeze's voice is heard through the echo canceller's double talk; a
    # pause in it may end a turn early, and the rest then comes as the turns after it
    cut_in = " ".join(t["user"] for t in talk.of("turn") if 1 < t["turn"] <= second["turn"])
    for said_words, clip, share in ((first["user"], "0880", 0.6), (cut_in, "0930", 0.4),
                                    (third["user"], "0870", 0.6)):
        said = heard(spoken[clip].text)
        assert len(heard(said_words) & said) >= share * len(said), (said_words, clip,
                                                                     talk.events)
    for turn in (first, second, third):
        metrics = turn["metrics"]
        stages = [metrics[k] for k in ("end_of_turn_ms", "transcript_ms", "first_token_ms",
                                       "first_sentence_ms", "first_audio_ms")]
        assert None not in stages and stages == sorted(stages), metrics
    # Breeze never cut itself off: every interruption came while the user was speaking
    # (the hold that makes speech a barge-in, and reading the event, come after it)
    for cut in talk.of("interrupted"):
        assert cut_in_from <= cut["at"] <= cut_in_to + 1.0, talk.events
    assert not talk.of("echo_ignored"), "Breeze's own voice came through the echo canceller"


def after(text: str, marker: str) -> str:
    """What the screen shows after the last line holding `marker` ('' when none does)."""
    lines = text.splitlines()
    hits = [i for i, line in enumerate(lines) if marker in line.lower()]
    return "\n".join(lines[hits[-1] + 1:]) if hits else ""


def test_breeze_talk_in_a_terminal_says_when_it_listens_and_holds_a_conversation(
        env, asr_sink, tmp_path):
    """`breeze talk` in tmux, as a person reads it: told to speak once it hears, the user's
    words on a line, Breeze's reply streamed after them, a cut-in noted, each turn timed."""
    spoken = clips()
    command = f"{BREEZE} talk -p max_tokens=70 -p temperature=0; echo exit $?; sleep 600"
    with terminal(command, env, 200, 60) as name:
        wait_screen(name, lambda s: "listening: speak" in s, timeout=180)
        say(spoken["0880"], tmp_path, asr_sink).wait(timeout=30)
        wait_screen(name, lambda s: "breeze: " in after(s, "you: "), timeout=120)
        time.sleep(2.0)  # into the reply (written at once, spoken from its first sentence on)
        say(spoken["0930"], tmp_path, asr_sink).wait(timeout=30)  # the user cuts in
        wait_screen(name, lambda s: "(interrupted after:" in s
                    and "end of turn" in after(s, "you: "), timeout=120)
        say(spoken["0870"], tmp_path, asr_sink).wait(timeout=30)
        wait_screen(name, lambda s: "end of turn" in after(s, "dashwood"), timeout=120)
        keys(name, "C-c")
        shown = wait_screen(name, lambda s: "exit " in s, timeout=30)
    assert "exit 0" in shown, shown
    said = heard(spoken["0880"].text)
    first_turn = shown.split("you: ", 1)[1].split("\n", 1)[0]
    assert len(heard(first_turn) & said) >= 0.6 * len(said), shown
    assert shown.count("(interrupted after:") == 1, shown  # Breeze never cut itself off
    assert "ignored my own voice" not in shown, shown


def test_the_apps_talk_mode_in_a_terminal_holds_a_conversation_with_a_cut_in(
        env, asr_sink, tmp_path):
    """The app in tmux: F3, three spoken turns (one cut in on), each reply with its timings
    under it, F3 again, and Breeze never cut itself off."""
    spoken = clips()
    with terminal(BREEZE, env, 120, 70) as name:
        wait_screen(name, lambda s: "ready" in s, timeout=180)
        keys(name, "F3")
        wait_screen(name, lambda s: "talk · listening" in s, timeout=180)
        say(spoken["0880"], tmp_path, asr_sink).wait(timeout=30)
        wait_screen(name, lambda s: "talk · speaking" in s, timeout=120)
        time.sleep(1.0)  # into the reply, as people cut in
        say(spoken["0930"], tmp_path, asr_sink).wait(timeout=30)  # the user cuts in
        wait_screen(name, lambda s: "interrupted —" in s and "talk · listening" in s
                    and s.count("transcript") >= 2, timeout=120)
        say(spoken["0870"], tmp_path, asr_sink).wait(timeout=30)
        wait_screen(name, lambda s: "transcript" in after(s, "dashwood")
                    and "talk · listening" in s, timeout=120)
        keys(name, "F3")
        shown = wait_screen(name, lambda s: "talk ·" not in s and "ready" in s, timeout=30)
    assert shown.count("interrupted —") == 1, shown  # Breeze never cut itself off
