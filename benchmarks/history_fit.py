"""Fitting a long chat history into the context window: the llama.cpp runner on the embedded
SmolLM2 (its real tokenizer and chat template), n_ctx 4096, through `Engine.run`.

Histories of 10 KB, 100 KB, 1 MB and 10 MB (2 KB turns, then a short question), each fitted
REPEATS times with max_tokens=0 (the fit only: no prompt evaluation). Reports per size the
request's wall time and the runner's own fit time (`prompt_fit_ms`): median, min and max;
and the ratio of the medians per 10x of history (1.0: constant, 10: linear).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time

SIZES = {"10KB": 10_000, "100KB": 100_000, "1MB": 1_000_000, "10MB": 10_000_000}
TURN_CHARS = 2_000
REPEATS = 7
N_CTX = 4096
_WORDS = ("river stone light paper window garden music quiet number letter morning yellow "
          "bridge market winter candle forest orange silver planet").split()


def _history(total_chars: int) -> list[dict[str, str]]:
    rng = random.Random(total_chars)
    messages = []
    for i in range(max(1, total_chars // TURN_CHARS)):
        words = [f"Turn {i}."]
        length = len(words[0])
        while length < TURN_CHARS:
            word = rng.choice(_WORDS)
            words.append(word)
            length += len(word) + 1
        messages.append({"role": "user" if i % 2 == 0 else "assistant",
                         "content": " ".join(words)})
    messages.append({"role": "user", "content": "Sum up our conversation in one line."})
    return messages


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


async def _measure() -> dict[str, object]:
    from breeze.engine import Engine, EngineSettings, InferenceRequest, InferenceResult, Registry
    from breeze.runners.llama_cpp import LlamaCppRunner

    runner = LlamaCppRunner()
    engine = Engine(Registry([runner]), EngineSettings(emit_interval_ms=0))
    params = {"n_ctx": N_CTX, "max_tokens": 0}
    await engine.preload(params=params)
    histories = {label: _history(chars) for label, chars in SIZES.items()}
    request_ms: dict[str, list[float]] = {label: [] for label in SIZES}
    fit_ms: dict[str, list[float]] = {label: [] for label in SIZES}
    last: dict[str, InferenceResult] = {}
    try:
        for _ in range(REPEATS):  # sizes interleaved: a busy moment of the machine hits all
            for label, messages in histories.items():
                request = InferenceRequest({"messages": messages}, params)
                start = time.perf_counter()
                result = await engine.run(request)
                request_ms[label].append((time.perf_counter() - start) * 1000)
                assert result.ok, result.error
                fit_ms[label].append(float(result.metadata["prompt_fit_ms"]))
                last[label] = result
    finally:
        await engine.aclose()
    sizes: dict[str, dict[str, object]] = {
        label: {
            "turns": len(histories[label]) - 1,
            "turns_dropped": last[label].metadata["turns_dropped"],
            "prompt_tokens": last[label].metadata["prompt_tokens"],
            "request_ms": _spread(request_ms[label]),
            "fit_ms": _spread(fit_ms[label]),
        }
        for label in SIZES
    }
    labels = list(SIZES)
    ratios = {
        f"{small}->{large}": round(
            _median(sizes[large]["request_ms"]) / _median(sizes[small]["request_ms"]), 2
        )
        for small, large in zip(labels, labels[1:], strict=False)
    }
    return {
        "benchmark": "history_fit",
        "model": "SmolLM2-135M-Instruct.Q4_1",
        "n_ctx": N_CTX,
        "turn_chars": TURN_CHARS,
        "repeats": REPEATS,
        "sizes": sizes,
        "request_ms_ratio_per_10x": ratios,
        "one_mb_under_1s": _median(sizes["1MB"]["request_ms"]) < 1000,
    }


def _median(spread: object) -> float:
    assert isinstance(spread, dict)
    return float(spread["median"])


def main() -> None:
    print(json.dumps(asyncio.run(_measure())), flush=True)


if __name__ == "__main__":
    main()
