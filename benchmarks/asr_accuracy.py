"""Speech recognition on real human speech: how many words each English recognizer gets
right, what streaming costs over faster-whisper on whole files, and how live it is.

The recordings are the LibriVox readings, spoken card names and command of the pocketsphinx
sdist (tests/runners/test_whisper_speech.py fetches them; about 38 s, 11 clips).

- `wer`: word error rate over all clips of the Whisper runner streaming (chunk mode: partials
  decoded as the audio arrives, a final per utterance), of faster-whisper's own `transcribe()`
  on each whole file (the same tiny.en model, its default beam search), of pocketsphinx, and of
  vosk when an English vosk model is on this machine (else null). `wer_ratio` = streaming /
  whole-file (goal <= 1.0).
- `cpu_ratio`: process CPU time of streaming / whole-file transcription over the same clips,
  runs interleaved (goal <= 1.5); `rtf`: wall time / audio duration of each; `repeats` runs,
  median and range.
- `live`: the clips at wall-clock speed with pauses between them, 100 ms frames: the delay from
  a chunk's arrival to the end of the first decode of an utterance that heard it, a partial or
  the utterance's final (p50/p95, goal p95 <= 700 ms; chunks of the pauses, in no utterance,
  are not counted: `silent_chunks`), and from the end of each clip's audio to its final result
  (goal p95 <= 800 ms for utterances under 8 s; the pause that ends an utterance,
  `min_silence_ms` = 500, is part of it).
- `idle_cpu_percent`: CPU use of the process while the runner hears 10 s of silence at
  wall-clock speed (goal < 5% of one core).
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import time
from collections.abc import Iterator
from typing import Any

CHUNK_MS = 100
REPEATS = 3
RATE = 16000
PAUSE_S = 1.5
IDLE_S = 10.0


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of the process
    return usage.ru_utime + usage.ru_stime


def _spread(values: list[float], digits: int = 3) -> dict[str, Any]:
    return {"median": round(statistics.median(values), digits),
            "range": [round(min(values), digits), round(max(values), digits)]}


def _percentiles(delays: list[float]) -> dict[str, Any]:
    if len(delays) < 2:
        return {"count": len(delays)}
    cuts = statistics.quantiles(delays, n=100, method="inclusive")
    return {"count": len(delays), "p50_ms": round(statistics.median(delays), 1),
            "p95_ms": round(cuts[94], 1), "max_ms": round(max(delays), 1)}


async def _engine_texts(engine: Any, clips: Any, **params: Any) -> tuple[list[str], float, float]:
    from breeze.engine import InferenceRequest

    cpu, start = _cpu_s(), time.perf_counter()
    texts = []
    for clip in clips:
        final = await engine.run(InferenceRequest({"audio": clip.pcm},
                                                  {"chunk_ms": CHUNK_MS, **params}))
        assert final.ok, final.error
        texts.append(final.text)
    return texts, time.perf_counter() - start, _cpu_s() - cpu


def _whole_files(model: Any, clips: Any) -> tuple[list[str], float, float]:
    cpu, start = _cpu_s(), time.perf_counter()
    texts = []
    for clip in clips:
        samples = _samples(clip.pcm)
        segments, _info = model.transcribe(samples, language="en")
        texts.append("".join(s.text for s in segments).strip())
    return texts, time.perf_counter() - start, _cpu_s() - cpu


def _samples(pcm: bytes) -> Any:
    import numpy as np

    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def _english_vosk() -> Any:
    from breeze.engine.models import for_language, local_path

    present = [e for e in for_language("en", "vosk") if local_path(e) is not None]
    return present[0].id if present else None


def _accuracy(loop: asyncio.AbstractEventLoop, clips: Any) -> dict[str, Any]:
    from breeze.engine import Engine, Registry
    from breeze.engine.models import find, local_path
    from breeze.runners.pocketsphinx_asr import PocketsphinxRunner
    from breeze.runners.vosk_asr import VoskRunner
    from breeze.runners.whisper_asr import WhisperRunner, open_model
    from tests.runners.test_whisper_speech import wer

    refs = [c.text for c in clips]
    audio_s = sum(c.seconds for c in clips)
    whisper = Engine(Registry([WhisperRunner()]))
    model = open_model(local_path(find("whisper-tiny-en")))  # type: ignore[arg-type]
    loop.run_until_complete(_engine_texts(whisper, clips[:1]))  # load and warm up both
    _whole_files(model, clips[:1])
    streamed: list[tuple[list[str], float, float]] = []
    whole: list[tuple[list[str], float, float]] = []
    for i in range(REPEATS):
        if i % 2 == 0:
            streamed.append(loop.run_until_complete(_engine_texts(whisper, clips)))
            whole.append(_whole_files(model, clips))
        else:
            whole.append(_whole_files(model, clips))
            streamed.append(loop.run_until_complete(_engine_texts(whisper, clips)))
    sphinx = loop.run_until_complete(
        _engine_texts(Engine(Registry([PocketsphinxRunner()])), clips, stream_mode="sentence"))
    vosk_id = _english_vosk()
    vosk = loop.run_until_complete(_engine_texts(
        Engine(Registry([VoskRunner()])), clips, model=vosk_id)) if vosk_id else None

    def score(texts: list[str]) -> float:
        return round(wer(list(zip(refs, texts, strict=True))), 4)

    stream_wer = [score(t) for t, _, _ in streamed]
    whole_wer = [score(t) for t, _, _ in whole]
    return {
        "clips": len(clips),
        "audio_seconds": round(audio_s, 1),
        "repeats": REPEATS,
        "wer": {
            "whisper_streaming": _spread(stream_wer),
            "faster_whisper_transcribe": _spread(whole_wer),
            "pocketsphinx": score(sphinx[0]),
            "vosk": score(vosk[0]) if vosk else None,
            "vosk_model": vosk_id,
        },
        "wer_ratio": round(statistics.median(stream_wer) / max(statistics.median(whole_wer),
                                                               1e-9), 3),
        "cpu_ratio": _spread([s[2] / w[2] for s, w in zip(streamed, whole, strict=True)]),
        "rtf": {
            "whisper_streaming": _spread([s[1] / audio_s for s in streamed]),
            "faster_whisper_transcribe": _spread([w[1] / audio_s for w in whole]),
            "pocketsphinx": round(sphinx[1] / audio_s, 3),
        },
        "examples": [{"reference": r, "streaming": s, "whole_file": w}
                     for r, s, w in zip(refs[:3], streamed[0][0], whole[0][0], strict=False)],
    }


class _Timeline:
    """What the live run saw: chunk arrivals, and when each partial decode ended."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []  # per chunk, when its audio was all "recorded"
        # (the utterance's start and end in the stream, s; when its decode was done)
        self.decodes: list[tuple[float, float, float]] = []


def _live_runner(timeline: _Timeline) -> Any:
    from breeze.engine import CancelToken, InferenceRequest
    from breeze.runners import whisper_asr
    from breeze.runners.audio_in import AudioSource, Frame, PcmSource

    class LiveSource(PcmSource):
        kind = "microphone"
        total_chunks = None

        def head(self, seconds: float) -> bytes:
            return b""

        def frames(self, token: CancelToken) -> Iterator[Frame]:
            start = time.perf_counter()
            for frame in super().frames(token):
                delay = start + frame.end_ms / 1000 - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                timeline.arrivals.append(time.perf_counter())
                yield frame

    class LiveWhisper(whisper_asr.WhisperRunner):
        def audio_source(self, request: InferenceRequest) -> AudioSource:
            return LiveSource(request.inputs["audio"], RATE, RATE, CHUNK_MS)

    class Recorded(whisper_asr._WhisperRecognizer):
        def _decode_partial(self, utterance: Any) -> Any:
            hypothesis = super()._decode_partial(utterance)
            timeline.decodes.append((utterance.start_s, utterance.end_s, time.perf_counter()))
            return hypothesis

        def _final(self, utterance: Any) -> Any:
            hypothesis = super()._final(utterance)
            timeline.decodes.append((utterance.start_s, utterance.end_s, time.perf_counter()))
            return hypothesis

    whisper_asr._WhisperRecognizer = Recorded  # type: ignore[misc]
    return LiveWhisper()


def _live(loop: asyncio.AbstractEventLoop, clips: Any) -> dict[str, Any]:
    from breeze.engine import Engine, InferenceRequest, Registry

    speech = [c for c in clips if c.seconds < 8.0]
    pause = bytes(2 * int(PAUSE_S * RATE))
    stream, ends = pause, []
    for clip in speech:
        stream += clip.pcm
        ends.append(len(stream) / 2 / RATE)
        stream += pause
    timeline = _Timeline()
    engine = Engine(Registry([_live_runner(timeline)]))
    finals: list[float] = []

    async def run() -> None:
        request = InferenceRequest({"audio": stream}, {"chunk_ms": CHUNK_MS})
        async for result in engine.submit(request):
            if result.partial and result.metadata.get("is_final"):
                finals.append(time.perf_counter())

    loop.run_until_complete(engine.preload(_asr()))
    loop.run_until_complete(run())
    partial_delays, silent = [], 0
    for index, arrived in enumerate(timeline.arrivals):
        end_s = (index + 1) * CHUNK_MS / 1000
        done = next((t for first, heard, t in timeline.decodes
                     if first < end_s - 1e-6 and heard >= end_s - 1e-6 and t >= arrived), None)
        if done is None:
            silent += 1
        else:
            partial_delays.append(1000 * (done - arrived))
    final_delays = []
    for end_s, final_at in zip(ends, finals, strict=False):
        arrived = timeline.arrivals[min(len(timeline.arrivals) - 1,
                                        int(end_s * 1000 / CHUNK_MS))]
        final_delays.append(1000 * (final_at - arrived))
    return {"utterances": len(speech), "finals": len(finals),
            "chunk_to_partial": _percentiles(partial_delays), "silent_chunks": silent,
            "speech_end_to_final": _percentiles(final_delays)}


def _asr() -> Any:
    from breeze.engine import Capability

    return Capability.ASR


def _idle(loop: asyncio.AbstractEventLoop) -> float:
    from breeze.engine import Engine, InferenceRequest, Registry

    engine = Engine(Registry([_live_runner(_Timeline())]))
    loop.run_until_complete(engine.preload(_asr()))
    request = InferenceRequest({"audio": bytes(2 * int(IDLE_S * RATE))}, {"chunk_ms": CHUNK_MS})
    cpu, start = _cpu_s(), time.perf_counter()
    final = loop.run_until_complete(engine.run(request))
    assert final.ok and final.text == "", final
    return round(100 * (_cpu_s() - cpu) / (time.perf_counter() - start), 2)


def main() -> None:
    from tests.runners.test_whisper_speech import human_speech

    clips = human_speech()
    loop = asyncio.new_event_loop()
    try:
        accuracy = _accuracy(loop, clips)
        idle = _idle(loop)
        live = _live(loop, clips)
    finally:
        loop.close()
    print(json.dumps({"benchmark": "asr_accuracy", **accuracy, "live": live,
                      "idle_cpu_percent": idle}), flush=True)


if __name__ == "__main__":
    main()
