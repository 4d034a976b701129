"""Talk mode through a PulseAudio null sink, with recorded human speech as the user.

The sink is the room: Breeze speaks into it, its monitor is the microphone (a perfect echo
path: every sample Breeze plays comes back), and the LibriVox recordings of the pocketsphinx
sdist (tests/runners/test_whisper_speech.py fetches them) are played into it with paplay as
the user. The embedded models answer: Whisper tiny.en, SmolLM2-135M, the default voice.

- `voice_to_voice_ms`: from the end of the user's speech (as the microphone delivered it) to
  Breeze's first audio heard, per turn: p50 / p95 (goal p50 <= 1500 on this machine), with
  the median of each stage before it (end of turn, transcript, first token, first sentence).
- `barge_in_ms`: from the user's first sound over Breeze's voice (the detector's onset) to
  Breeze silent: p50 / p95 (goal p95 <= 300).
- `echo`: Breeze speaking at length with nobody else in the room: seconds spoken, barge-ins
  (goal 0), words transcribed (goal 0) and transcripts dropped as Breeze's own voice.

p95 is the nearest rank over the turns measured (`turns`, `barge_ins`): a handful of turns,
so the two percentiles are close to the slowest ones.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

SINK = "breeze_bench_talk"
TURNS = ("0880", "0930", "0890", "0870", "0920", "0880")
BARGE_INS = (("0930", "0890"), ("0880", "0920"), ("0890", "0930"))
ECHO_S = 60.0


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(share * len(ordered)) - 1)], 1)


def _summary(values: list[float]) -> dict[str, Any]:
    return {"p50": _percentile(values, 0.5), "p95": _percentile(values, 0.95),
            "min": min(values, default=None), "max": max(values, default=None),
            "n": len(values)}


class _Room:
    """A null sink of its own, the default speaker and microphone of this process."""

    def __enter__(self) -> _Room:
        subprocess.run(["scripts/null-sink.sh"], check=True, timeout=60)
        self.module = subprocess.run(
            ["pactl", "load-module", "module-null-sink", f"sink_name={SINK}", "rate=48000"],
            check=True, capture_output=True, text=True).stdout.strip()
        os.environ["PULSE_SINK"], os.environ["PULSE_SOURCE"] = SINK, f"{SINK}.monitor"
        self.dir = tempfile.TemporaryDirectory()
        return self

    def say(self, clip: Any) -> subprocess.Popen[bytes]:
        from breeze.engine.audio import write_wav

        path = Path(self.dir.name) / f"{clip.name}.wav"
        write_wav(path, clip.pcm, 16000)
        return subprocess.Popen(["paplay", f"--device={SINK}", str(path)])

    def __exit__(self, *exc: object) -> None:
        self.dir.cleanup()
        subprocess.run(["pactl", "unload-module", self.module], check=False)


class _Events:
    """The conversation's events as they come, and waiting for one."""

    def __init__(self, talk: Any) -> None:
        self.seen: list[Any] = []
        self._arrived = asyncio.Condition()
        self._task = asyncio.create_task(self._collect(talk))

    async def _collect(self, talk: Any) -> None:
        async for event in talk:
            async with self._arrived:
                self.seen.append(event)
                self._arrived.notify_all()

    async def wait(self, test: Callable[[Any], bool], since: int = 0,
                   within: float = 180.0) -> Any:
        def found() -> Any:
            return next((e for e in self.seen[since:] if test(e)), None)

        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(lambda: found() is not None)
        return found()


async def _converse(room: _Room, clips: dict[str, Any]) -> dict[str, Any]:
    from breeze.engine.talk import Interrupted, Speaking, TurnDone
    from breeze.tui.config import AppConfig
    from breeze.tui.talking import TalkOptions, open_talk

    engine = _engine()
    session = await open_talk(engine, AppConfig(), TalkOptions(
        llm_params={"max_tokens": 48, "temperature": 0.0}))
    events = _Events(session.talk)
    done: list[Any] = []
    barge_ins: list[float] = []
    try:
        for name in TURNS:
            mark = len(events.seen)
            await asyncio.to_thread(room.say(clips[name]).wait)
            done.append(await events.wait(lambda e: isinstance(e, TurnDone)
                                          and e.finish_reason != "ignored", mark))
        for question, cut_in in BARGE_INS:
            mark = len(events.seen)
            await asyncio.to_thread(room.say(clips[question]).wait)
            await events.wait(lambda e: isinstance(e, Speaking), mark)
            await asyncio.sleep(1.0)  # into the reply, as people cut in
            mark = len(events.seen)
            cutting_in = room.say(clips[cut_in])
            interrupted = await events.wait(lambda e: isinstance(e, Interrupted), mark)
            if interrupted.barge_in_ms is not None:
                barge_ins.append(interrupted.barge_in_ms)
            await asyncio.to_thread(cutting_in.wait)
            await events.wait(lambda e: isinstance(e, TurnDone) and e.finish_reason
                              not in ("interrupted", "ignored", "continued"), mark)
    finally:
        await session.aclose()
        await engine.aclose()
    stages = ("end_of_turn_ms", "transcript_ms", "first_token_ms", "first_sentence_ms")
    voice = [t.metrics.first_audio_ms for t in done if t.metrics.first_audio_ms is not None]
    return {
        "turns": len(done),
        "voice_to_voice_ms": _summary(voice),
        "stages_median_ms": {s: statistics.median(getattr(t.metrics, s) for t in done
                                                  if getattr(t.metrics, s) is not None)
                             for s in stages},
        "barge_ins": len(barge_ins),
        "barge_in_ms": _summary(barge_ins),
        "self_interruptions": sum(isinstance(e, Interrupted) for e in events.seen)
        - len(BARGE_INS),
    }


async def _echo() -> dict[str, Any]:
    """Breeze telling a long story into the room; nobody else speaks."""
    from breeze.engine.talk import EchoIgnored, Heard, Interrupted, TurnDone
    from breeze.tui.config import AppConfig
    from breeze.tui.talking import TalkOptions, open_talk

    engine = _engine()
    session = await open_talk(engine, AppConfig(), TalkOptions(
        llm_params={"max_tokens": 400, "temperature": 0.0}))
    events = _Events(session.talk)
    player = session.talk.player
    started = player.played_ms
    prompts = iter(["Tell me a long story about a lighthouse keeper and the sea.",
                    "Go on with the story.", "And then? Tell me more.", "Go on."] * 3)
    try:
        while player.played_ms - started < ECHO_S * 1000:
            mark = len(events.seen)
            session.talk.ask(next(prompts))
            await events.wait(lambda e: isinstance(e, TurnDone), mark, within=600)
    finally:
        await session.aclose()
        await engine.aclose()
    heard = [e for e in events.seen if isinstance(e, Heard) and not e.typed]
    return {
        "spoken_s": round((player.played_ms - started) / 1000, 1),
        "barge_ins": sum(isinstance(e, Interrupted) for e in events.seen),
        "words_transcribed": sum(len(e.text.split()) for e in heard if e.final),
        "partials_heard": sum(not e.final for e in heard),
        "dropped_as_echo": sum(isinstance(e, EchoIgnored) for e in events.seen),
    }


def _engine() -> Any:
    from breeze.engine import Engine, EngineSettings
    from breeze.runners import builtin_registry

    return Engine(builtin_registry(), EngineSettings())


async def _measure() -> dict[str, Any]:
    from tests.runners.test_whisper_speech import human_speech

    clips = {c.name.rsplit("-", 1)[-1]: c for c in human_speech() if "austen" in c.name}
    with _Room() as room:
        conversation = await _converse(room, clips)
        echo = await _echo()
    return {"benchmark": "talk", "cores": os.cpu_count(), **conversation, "echo": echo}


def main() -> None:
    print(json.dumps(asyncio.run(_measure())), flush=True)


if __name__ == "__main__":
    main()
