"""TTS latency: streamed sentence by sentence vs synthesizing the whole text first.

For a 5-sentence paragraph, through the engine and the pyttsx3 runner (espeak-ng):
  - time from the request to the first audio chunk, streamed vs whole-text (the whole
    paragraph as one utterance, straight from the worker: the first audio exists only when
    all of it does). Goal: streamed <= 0.25x whole-text.
  - time from the request to the first sample played on the default output device (a player
    already open, as in the app), both ways.
  - the silence between sentences when streamed (the end of sentence i, the start of i+1, and
    any silence the player had to insert because audio came late) against the pause the voice
    makes itself between the same sentences in the whole-text utterance. Goal: <= 30 ms added.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

import numpy as np

PARAGRAPH = (
    "The morning was quiet. Birds sang in the old oak tree. A cat watched them from the "
    "window. Then the rain began to fall. Everyone went inside for tea."
)
RUNS = 7
SILENCE = 300  # |sample| below this (about -40 dBFS) is silence
WINDOW = 110  # samples: 5 ms at 22050 Hz


async def _streamed(engine: Any, player: Any | None) -> tuple[float, float | None, list[bytes]]:
    """(ms to the first audio chunk, ms to the first sample heard, each sentence's audio)."""
    from engine import Capability, InferenceRequest

    request = InferenceRequest({"text": PARAGRAPH}, capability=Capability.TTS)
    start = time.perf_counter()
    first_audio = None
    sentences: list[bytes] = []
    async for result in engine.submit(request):
        audio = result.outputs.get("audio")
        if not audio:
            continue
        if first_audio is None and player is not None:
            player.play(audio, result.outputs["sample_rate"])  # only its start is timed
        first_audio = first_audio or (time.perf_counter() - start) * 1000
        if result.metadata["sentence_index"] == len(sentences):
            sentences.append(b"")
        sentences[-1] += audio
    assert first_audio is not None
    return first_audio, await _heard_after(player, start), sentences


async def _whole(runner: Any, player: Any | None) -> tuple[float, float | None, bytes]:
    """The paragraph as one utterance: (ms until all of it exists, ms to first heard, audio)."""
    start = time.perf_counter()
    audio = await asyncio.to_thread(_synthesize_whole, runner)
    ready = (time.perf_counter() - start) * 1000
    if player is not None:
        player.play(audio[: runner.worker.sample_rate], runner.worker.sample_rate)
    return ready, await _heard_after(player, start), audio


def _synthesize_whole(runner: Any) -> bytes:
    with runner.worker.synthesize(PARAGRAPH, "gmw/en-us", 175, 1.0) as job:
        return b"".join(chunk.pcm for chunk in job)


async def _heard_after(player: Any | None, start: float) -> float | None:
    if player is None:
        return None
    for _ in range(10_000):  # ten seconds at most
        if player.first_sample_at is not None:
            break
        await asyncio.sleep(0.001)
    assert player.first_sample_at is not None, "the device played nothing"
    heard = (player.first_sample_at - start) * 1000
    await player.drain()
    player.cancel()  # silent by now: only resets first_sample_at for the next run
    return heard


def _silent_runs(pcm: bytes) -> list[tuple[int, int]]:
    """(start, length) in windows of each run of silent windows."""
    samples = np.abs(np.frombuffer(pcm, dtype="<i2")).astype(np.int32)
    frames = samples[: len(samples) // WINDOW * WINDOW].reshape(-1, WINDOW).max(axis=1)
    runs: list[tuple[int, int]] = []
    for i, silent in enumerate(frames < SILENCE):
        if not silent:
            continue
        if runs and runs[-1][0] + runs[-1][1] == i:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((i, 1))
    return runs


def _edge_silence_ms(pcm: bytes) -> tuple[float, float]:
    """Silence at the start and at the end of one sentence's audio, ms."""
    runs = _silent_runs(pcm)
    windows = len(pcm) // 2 // WINDOW
    lead = runs[0][1] if runs and runs[0][0] == 0 else 0
    trail = runs[-1][1] if runs and runs[-1][0] + runs[-1][1] == windows else 0
    return lead * 5.0, trail * 5.0


def _pauses(whole: bytes, sentences: list[bytes], gaps_ms: list[float]) -> dict[str, Any]:
    """The voice's own pauses: the longest silences inside the whole-text utterance, one per
    sentence boundary. Streamed: trailing + leading silence at each boundary, plus gaps."""
    boundaries = len(sentences) - 1
    inner = [length * 5.0 for start, length in _silent_runs(whole)[1:-1]]
    own = sorted(inner, reverse=True)[:boundaries]
    edges = [_edge_silence_ms(s) for s in sentences]
    streamed = [edges[i][1] + edges[i + 1][0] for i in range(boundaries)]
    added = statistics.mean(streamed) - statistics.mean(own) + sum(gaps_ms) / boundaries
    return {
        "voice_own_ms": round(statistics.mean(own), 1),
        "streamed_ms": round(statistics.mean(streamed), 1),
        "player_gaps_ms": [round(g, 1) for g in gaps_ms],
        "added_ms": round(added, 1),
        "goal_added_ms": 30,
        "met": added <= 30,
    }


def _open_player() -> tuple[Any | None, str | None]:
    from engine import BreezeError
    from runners.audio_out import Player

    try:
        player = Player().open()
    except BreezeError as exc:
        return None, str(exc.error)
    player.play(bytes(22050))  # half a second of silence: a suspended device wakes up
    player.wait(timeout=15)
    player.cancel()
    return player, None


async def _measure() -> dict[str, Any]:
    from engine import Engine, Registry
    from runners.pyttsx3_tts import Pyttsx3Runner

    runner = Pyttsx3Runner()
    engine = Engine(Registry([runner]))
    player, no_player = _open_player()
    try:
        await _streamed(engine, None)  # warm up: the worker process is running
        streamed = [await _streamed(engine, player) for _ in range(RUNS)]
        whole = [await _whole(runner, player) for _ in range(RUNS)]
        gaps_ms: list[float] = []
        if player is not None:  # the streamed paragraph, played through: what gaps appear
            player.gaps_ms.clear()
            await _streamed_through(engine, player)
            gaps_ms = list(player.gaps_ms)
    finally:
        if player is not None:
            player.close()
        await engine.aclose()
    first_streamed = statistics.median(s[0] for s in streamed)
    first_whole = statistics.median(w[0] for w in whole)
    heard = [s[1] for s in streamed if s[1] is not None]
    heard_whole = [w[1] for w in whole if w[1] is not None]
    return {
        "benchmark": "tts_latency",
        "sentences": 5,
        "runs": RUNS,
        "first_audio_ms": {
            "streamed": round(first_streamed, 2),
            "whole_text": round(first_whole, 2),
            "ratio": round(first_streamed / first_whole, 3),
            "goal_ratio": 0.25,
            "met": first_streamed <= 0.25 * first_whole,
        },
        "first_sample_played_ms": {
            "streamed": round(statistics.median(heard), 2) if heard else None,
            "whole_text": round(statistics.median(heard_whole), 2) if heard_whole else None,
            "output_latency_ms": player.latency_ms if player is not None else None,
            "unavailable": no_player,
        },
        "sentence_pause": _pauses(whole[0][2], streamed[0][2], gaps_ms),
        "audio_ms": round(len(whole[0][2]) / 2 / 22.05, 1),
    }


async def _streamed_through(engine: Any, player: Any) -> None:
    """Stream the paragraph into the player as the app does and wait until it has played."""
    from engine import Capability, InferenceRequest

    request = InferenceRequest({"text": PARAGRAPH}, capability=Capability.TTS)
    async for result in engine.submit(request):
        if result.outputs.get("audio"):
            player.play(result.outputs["audio"], result.outputs["sample_rate"])
    await player.drain()


def main() -> None:
    print(json.dumps(asyncio.run(_measure())))


if __name__ == "__main__":
    main()
