"""The guardian's cost on a chat turn, with the embedded SmolLM2 on llama.cpp.

- Input: the time `check_input` adds before the model starts (it runs before a runner is
  chosen, so it adds to TTFT one for one) for a 200-character prompt, default checks
  (offensive language) and all three; goal <= 5 ms median.
- Output: tokens per second from submit to the last result (greedy, 256 tokens) with the
  default guardian (input BLOCK, output FILTER of personal data, released as it streams)
  over the same without any guard; goal >= 0.97. Runs alternate; the KV cache is cleared
  before each. Side by side in the same pairs: when the first text reaches the consumer
  (goal: within 1.10x of no guard) and how many results with new text a reply brings
  (goal: at least 0.8x).
- False positives: the share of clean English sentences (the prose of Python's own
  documentation topics, `pydoc_data.topics`, which ships with the interpreter) that the
  offensive-language check blocks or warns about, at each strictness; goal < 0.5%.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

PROMPT_200 = (
    "Hello, I would like some help writing an email to my landlord about the broken heater "
    "in my flat. It has been cold for a week now and I want a polite but firm tone. Could "
    "you draft it for me? Thanks!!"
)
STORY = "Write a long story about a dragon who learns to fly."
GREEDY = {"temperature": 0.0, "repeat_penalty": 1.0, "max_tokens": 256}
CHECK_RUNS = 300
RUNS = 9


async def _input_check_ms(engine: Any, guard: Any, runs: int) -> float:
    from breeze.engine import InferenceRequest

    request = InferenceRequest({"text": PROMPT_200})
    for _ in range(20):  # warm up: the classifier load, the first thread-pool hops
        await guard.check_input(engine, request)
    timings = []
    for _ in range(runs):
        began = time.perf_counter()
        verdict = await guard.check_input(engine, request)
        timings.append((time.perf_counter() - began) * 1000)
        assert verdict.blocked is None
    return statistics.median(timings)


async def _turn(engine: Any, runner: Any) -> dict[str, float]:
    from breeze.engine import InferenceRequest

    runner._llm.reset()
    began = time.perf_counter()
    first = None
    pieces = 0
    async for result in engine.submit(InferenceRequest({"text": STORY}, GREEDY)):
        if result.outputs.get("delta"):
            pieces += 1
        if first is None and result.text:
            first = time.perf_counter()
    assert result.ok and first is not None, result.error
    elapsed = time.perf_counter() - began
    tokens = int(result.metadata["tokens_generated"])
    output = result.metadata.get("guardian_output", {})
    return {"tps": tokens / elapsed, "first_text_ms": (first - began) * 1000, "pieces": pieces,
            "tokens": tokens, "output_checks": output.get("checks", 0),
            "output_check_ms": output.get("check_ms", 0.0), "elapsed_ms": elapsed * 1000}


async def _measure() -> dict[str, object]:
    from breeze.engine import Engine, EngineSettings, Registry
    from breeze.engine.guardian import Checkpoint, GuardianSettings, Strategy, make_guard
    from breeze.runners.guardian import GuardianRunner
    from breeze.runners.llama_cpp import LlamaCppRunner

    assert len(PROMPT_200) == 200
    guardian, llama = GuardianRunner(), LlamaCppRunner()
    registry = Registry([guardian, llama])
    guard = make_guard(GuardianSettings.default())
    all_checks = make_guard(GuardianSettings(input=Checkpoint(
        Strategy.BLOCK, ("offensive", "personal_data", "prompt_injection"))))
    assert guard is not None and all_checks is not None
    guarded = Engine(registry, EngineSettings(guard=guard))
    plain = Engine(registry)
    default_ms = await _input_check_ms(guarded, guard, CHECK_RUNS)
    all_ms = await _input_check_ms(guarded, all_checks, CHECK_RUNS)
    await plain.run(_probe())  # load the model
    with_guard, without = [], []
    for i in range(RUNS):  # pairs back to back, alternating which goes first
        pair = [(guarded, with_guard), (plain, without)]
        for engine, runs in pair if i % 2 else pair[::-1]:
            runs.append(await _turn(engine, llama))
    false_positives = {level: await _false_positive_share(plain, level)
                       for level in ("low", "medium", "high")}
    await plain.aclose()
    # each pair ran back to back: the median of their ratios resists a busy machine

    def paired(key: str) -> list[float]:
        return [g[key] / p[key] for g, p in zip(with_guard, without, strict=True)]

    ratio = statistics.median(paired("tps"))
    first_ratios, pieces_ratios = paired("first_text_ms"), paired("pieces")
    return {
        "benchmark": "guardian",
        "prompt_chars": len(PROMPT_200),
        "input_check_ms_median": round(default_ms, 3),
        "input_check_all_checks_ms_median": round(all_ms, 3),
        "input_check_goal_ms": 5.0,
        "tokens": int(with_guard[0]["tokens"]),
        "tokens_per_s_without_guard": round(statistics.median(r["tps"] for r in without), 1),
        "tokens_per_s_with_guard": round(statistics.median(r["tps"] for r in with_guard), 1),
        "throughput_kept": round(ratio, 3),
        "throughput_goal": 0.97,
        "output_checks_per_reply": int(with_guard[0]["output_checks"]),
        # the time the checks themselves took, as a share of the reply: what the guard
        # costs when the machine is too busy for the wall-clock ratio to be steady
        "output_check_ms_per_reply": round(
            statistics.median(r["output_check_ms"] for r in with_guard), 2),
        "output_check_share_of_reply": round(statistics.median(
            r["output_check_ms"] / r["elapsed_ms"] for r in with_guard), 4),
        "first_text_ms_without_guard": round(
            statistics.median(r["first_text_ms"] for r in without), 1),
        "first_text_ms_with_guard": round(
            statistics.median(r["first_text_ms"] for r in with_guard), 1),
        "first_text_ratio": round(statistics.median(first_ratios), 3),
        "first_text_ratio_range": [round(min(first_ratios), 3), round(max(first_ratios), 3)],
        "first_text_goal": 1.10,
        "results_per_reply_without_guard": statistics.median(r["pieces"] for r in without),
        "results_per_reply_with_guard": statistics.median(r["pieces"] for r in with_guard),
        "results_per_reply_ratio": round(statistics.median(pieces_ratios), 3),
        "results_per_reply_goal": 0.8,
        "clean_sentences": len(_clean_sentences()),
        "false_positive_share": false_positives,
        "false_positive_goal": 0.005,
    }


def _clean_sentences() -> list[str]:
    """Prose sentences of Python's documentation topics (code examples left out)."""
    import re
    from pydoc_data.topics import topics

    from breeze.engine.text import split_sentences

    found: set[str] = set()
    for text in topics.values():
        for paragraph in re.split(r"\n\s*\n", text):
            if paragraph.startswith("   ") or ">>>" in paragraph:
                continue
            for sentence in split_sentences(" ".join(paragraph.split())):
                words = sentence.text
                if 30 <= len(words) <= 300 and sum(c.isalpha() for c in words) > 0.7 * len(words):
                    found.add(words)
    return sorted(found)


async def _false_positive_share(engine: Any, strictness: str) -> float:
    """The share of clean sentences the default input check blocks or warns about."""
    from breeze.engine import InferenceRequest
    from breeze.engine.guardian import GuardianSettings, make_guard

    guard = make_guard(GuardianSettings(strictness=strictness))
    assert guard is not None
    sentences = _clean_sentences()
    flagged = 0
    for sentence in sentences:
        verdict = await guard.check_input(engine, InferenceRequest({"text": sentence}))
        info = (verdict.blocked.metadata if verdict.blocked else verdict.metadata)
        flagged += info["guardian_input"]["action"] in ("blocked", "warned")
    return round(flagged / len(sentences), 5)


def _probe() -> Any:
    from breeze.engine import InferenceRequest

    return InferenceRequest({"text": "hi"}, {"max_tokens": 1})


def main() -> None:
    print(json.dumps(asyncio.run(_measure())), flush=True)


if __name__ == "__main__":
    main()
