"""TTS latency: streamed sentence by sentence vs synthesizing the whole text first.

For a 5-sentence paragraph, through the engine and the pyttsx3 runner (espeak-ng):
  - time from the request to the first audio chunk when streamed, against the time until the
    whole text's audio exists (the same request, waited for to its end): what a "synthesize
    first, then play" path would wait. Goal: streamed <= 0.25x whole-text. Also shown: the
    paragraph as one single espeak utterance straight from the worker (no engine, no
    per-sentence overhead), the cheapest possible whole-text synthesis.
  - time from the request to the first sample played on the default output device (a player
    already open, as in the app), both ways.
  - the silence between sentences when streamed (the end of sentence i, the start of i+1, and
    any silence the player had to insert because audio came late) against the pause the voice
    makes itself between the same sentences in the single utterance. Goal: <= 30 ms added.
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


async def _request(engine: Any, player: Any | None, streamed: bool) -> dict[str, Any]:
    """One request for the paragraph. Streamed, its first chunk is played as it arrives;
    otherwise once all the audio exists. Times in ms from the request."""
    from breeze.engine import Capability, InferenceRequest

    request = InferenceRequest({"text": PARAGRAPH}, capability=Capability.TTS)
    start = time.perf_counter()
    first: tuple[bytes, int] | None = None
    first_ms = None
    sentences: list[bytes] = []
    async for result in engine.submit(request):
        audio = result.outputs.get("audio")
        if not audio:
            continue
        if first is None:
            first, first_ms = (audio, result.outputs["sample_rate"]), _since(start)
            if streamed and player is not None:
                player.play(*first)  # only when the first sample sounds is timed
        if result.metadata["sentence_index"] == len(sentences):
            sentences.append(b"")
        sentences[-1] += audio
    all_ms = _since(start)
    if not streamed and player is not None and first is not None:
        player.play(*first)
    heard = await _heard_after(player, start)
    return {"first": first_ms, "all": all_ms, "heard": heard, "sentences": sentences}


def _single_utterance(runner: Any) -> tuple[float, bytes]:
    """The paragraph as one espeak utterance: (ms until all of it exists, its audio)."""
    start = time.perf_counter()
    with runner.worker.synthesize(PARAGRAPH, "gmw/en-us", 175, 1.0) as job:
        audio = b"".join(chunk.pcm for chunk in job)
    return _since(start), audio


def _since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


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
    from breeze.engine import BreezeError
    from breeze.runners.audio_out import Player

    try:
        player = Player().open()
    except BreezeError as exc:
        return None, str(exc.error)
    player.play(bytes(22050))  # half a second of silence: a suspended device wakes up
    player.wait(timeout=15)
    player.cancel()
    return player, None


async def _measure() -> dict[str, Any]:
    from breeze.engine import Engine, Registry
    from breeze.runners.pyttsx3_tts import Pyttsx3Runner

    runner = Pyttsx3Runner()
    engine = Engine(Registry([runner]))
    player, no_player = _open_player()
    try:
        await _request(engine, None, streamed=True)  # warm up: the worker process is running
        streamed = [await _request(engine, player, streamed=True) for _ in range(RUNS)]
        whole = [await _request(engine, player, streamed=False) for _ in range(RUNS)]
        single = [await asyncio.to_thread(_single_utterance, runner) for _ in range(RUNS)]
        gaps_ms: list[float] = []
        if player is not None:  # the streamed paragraph, played through: what gaps appear
            player.gaps_ms.clear()
            await _streamed_through(engine, player)
            gaps_ms = list(player.gaps_ms)
    finally:
        if player is not None:
            player.close()
        await engine.aclose()
    first = statistics.median(r["first"] for r in streamed)
    all_audio = statistics.median(r["all"] for r in whole)
    one_utterance = statistics.median(ms for ms, _ in single)
    return {
        "benchmark": "tts_latency",
        "sentences": 5,
        "runs": RUNS,
        "first_audio_ms": {
            "streamed": round(first, 2),
            "whole_text": round(all_audio, 2),
            "ratio": round(first / all_audio, 3),
            "goal_ratio": 0.25,
            "met": first <= 0.25 * all_audio,
            "whole_text_single_utterance": round(one_utterance, 2),
            "ratio_to_single_utterance": round(first / one_utterance, 3),
        },
        "first_sample_played_ms": {
            "streamed": _median(r["heard"] for r in streamed),
            "whole_text": _median(r["heard"] for r in whole),
            "output_latency_ms": player.latency_ms if player is not None else None,
            "unavailable": no_player,
        },
        "sentence_pause": _pauses(single[0][1], streamed[0]["sentences"], gaps_ms),
        "audio_ms": round(len(single[0][1]) / 2 / 22.05, 1),
    }


def _median(values: Any) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 2) if present else None


async def _streamed_through(engine: Any, player: Any) -> None:
    """Stream the paragraph into the player as the app does and wait until it has played."""
    from breeze.engine import Capability, InferenceRequest

    request = InferenceRequest({"text": PARAGRAPH}, capability=Capability.TTS)
    async for result in engine.submit(request):
        if result.outputs.get("audio"):
            player.play(result.outputs["audio"], result.outputs["sample_rate"])
    await player.drain()


def main() -> None:
    print(json.dumps(asyncio.run(_measure())))


if __name__ == "__main__":
    main()
