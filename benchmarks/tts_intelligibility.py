"""TTS intelligibility: how well a recognizer understands each voice, and what it costs.

Every available speech runner (pyttsx3's espeak-ng, Piper's neural voice when the
neural-voice extra is installed) speaks a fixed set of sentences through the engine; the
engine's default English recognizer (the ASR runner that a request for English reaches,
whichever that is on this machine) transcribes the audio, and the round trip's word error
rate is counted against the text (goal: the neural voice at most half of espeak-ng's).
Beside it, on this machine: first-audio latency (request to first audio chunk) and
real-time factor (synthesis wall time / audio duration). Runners take turns sentence by
sentence, so that drift in the machine's speed hits them alike; each figure is given as the
median with its spread (min, max) over the repeats. Runners are warmed up (loaded) first.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from typing import Any

# The first ten Harvard sentences (list 1): phonetically balanced, no digits or names.
SENTENCES = (
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
)
REPEATS = 3
ASR_RATE = 16000
TTS_RUNNERS = ("pyttsx3", "piper")


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower().replace("’", "'"))


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Word-level Levenshtein distance: substitutions + deletions + insertions."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


def spread(runs: list[list[float]], digits: int = 3) -> dict[str, Any]:
    """Median, min and max of every value; `runs`: the median of each repeat."""
    values = [v for run in runs for v in run]
    return {"median": round(statistics.median(values), digits),
            "min": round(min(values), digits), "max": round(max(values), digits),
            "runs": [round(statistics.median(run), digits) for run in runs]}


async def synthesize(engine: Any, runner: str, text: str) -> dict[str, Any]:
    """One sentence: its audio (PCM16 mono), rate, first-audio latency and wall time (ms)."""
    from breeze.engine import BreezeError, Capability, InferenceRequest

    request = InferenceRequest({"text": text}, capability=Capability.TTS)
    start = time.perf_counter()
    first_ms: float | None = None
    chunks, rate = [], 0
    async for result in engine.submit(request, runner=runner):
        if result.error is not None:
            raise BreezeError(result.error.code, f"{runner}: {result.error.message}")
        if result.outputs.get("audio"):
            first_ms = first_ms if first_ms is not None else _since(start)
            chunks.append(result.outputs["audio"])
            rate = int(result.outputs["sample_rate"])
    return {"pcm": b"".join(chunks), "rate": rate, "first_ms": first_ms,
            "wall_ms": _since(start)}


async def transcribe(engine: Any, pcm: bytes, rate: int, runner: str | None) -> tuple[str, str]:
    """(text, runner name) of the engine's English recognizer for this audio."""
    from breeze.engine import BreezeError, Capability, InferenceRequest
    from breeze.engine.audio import resample

    audio = resample(pcm, rate, ASR_RATE)
    request = InferenceRequest({"audio": audio}, {"language": "en", "sample_rate": ASR_RATE},
                               capability=Capability.ASR)
    result = await engine.run(request, runner=runner)
    if result.error is not None:
        raise BreezeError(result.error.code, f"recognizer: {result.error.message}")
    return str(result.outputs.get("text", "")), str(result.metadata.get("runner_name"))


def _since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


async def measure(repeats: int = REPEATS) -> dict[str, Any]:
    from breeze.engine import Capability, Engine
    from breeze.runners import builtin_registry

    engine = Engine(builtin_registry())
    try:
        available = [e.name for e in engine.registry.candidates(Capability.TTS)
                     if e.name in TTS_RUNNERS and e.runner.is_supported()]
        unavailable = {name: engine.registry.get(name).is_supported().reason
                       for name in TTS_RUNNERS if name not in available}
        # warm-up: each voice loaded; the English recognizer found as a user's request finds it
        asr_runner: str | None = None
        for name in available:
            warm = await synthesize(engine, name, "Warming up.")
            _, asr_runner = await transcribe(engine, warm["pcm"], warm["rate"], asr_runner)
        asr_model = engine.registry.get(asr_runner).model_name if asr_runner else None
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in available}
        for repeat in range(repeats):
            for sentence in SENTENCES:
                for name in available:
                    spoken = await synthesize(engine, name, sentence)
                    heard, _ = await transcribe(engine, spoken["pcm"], spoken["rate"],
                                                asr_runner)
                    audio_ms = 1000 * len(spoken["pcm"]) / 2 / spoken["rate"]
                    rows[name].append({
                        "repeat": repeat, "text": sentence, "heard": heard,
                        "errors": edit_distance(words(sentence), words(heard)),
                        "first_ms": spoken["first_ms"], "rtf": spoken["wall_ms"] / audio_ms,
                    })
    finally:
        await engine.aclose()
    return _report(rows, repeats, asr_runner, asr_model, unavailable)


def _report(rows: dict[str, list[dict[str, Any]]], repeats: int, asr_runner: str | None,
            asr_model: str | None, unavailable: dict[str, str]) -> dict[str, Any]:
    reference_words = sum(len(words(s)) for s in SENTENCES)
    runners: dict[str, Any] = {}
    for name, runs in rows.items():
        by_repeat = [[r for r in runs if r["repeat"] == k] for k in range(repeats)]
        runners[name] = {
            "wer": spread([[sum(r["errors"] for r in rep) / reference_words]
                           for rep in by_repeat]),
            "first_audio_ms": spread([[r["first_ms"] for r in rep] for rep in by_repeat], 1),
            "rtf": spread([[r["rtf"] for r in rep] for rep in by_repeat]),
            "misheard": [{"text": r["text"], "heard": r["heard"]}
                         for r in runs if r["repeat"] == 0 and r["errors"]][:3],
        }
    report: dict[str, Any] = {
        "benchmark": "tts_intelligibility", "recognizer": asr_runner, "recognizer_model":
        asr_model, "sentences": len(SENTENCES), "words": reference_words, "repeats": repeats,
        "runners": runners, "unavailable": unavailable,
    }
    if {"pyttsx3", "piper"} <= set(runners):
        espeak, neural = (runners[n]["wer"]["median"] for n in ("pyttsx3", "piper"))
        report["goal"] = {"neural_wer_over_espeak_wer":
                          round(neural / espeak, 3) if espeak else None,
                          "met": neural <= espeak / 2}
    return report


def main() -> None:
    print(json.dumps(asyncio.run(measure())), flush=True)


if __name__ == "__main__":
    main()
