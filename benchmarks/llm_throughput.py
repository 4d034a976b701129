"""LLM generation through the engine vs llama-cpp-python's own streaming chat API.

Same model (the embedded SmolLM2), greedy sampling, 256 tokens and threads, in one process,
in pairs back to back, which side goes first swapping from pair to pair. Each pair has a
prompt of its own, the same for both sides, so neither finds it in its KV cache (both reuse
the chat template's opening, as they would in a chat). The engine runs with its default
settings; llama-cpp-python's `create_chat_completion(stream=True)` runs on a thread that
ends after the run, as the engine's runner does: llama.cpp's OpenMP keeps a team of threads
for every thread that has decoded, and two teams on the cores slow both sides alike.

Reports tokens/s (first to last token, at the consumer) and time to the first text for
both, each as the median and range of the runs; the ratio is the median of the pairs' ratios
(what a busy machine affects least), with their range.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ._chat import default_model_chat

SUBJECTS = (
    "a dragon who learns to fly",
    "a lighthouse keeper and a storm",
    "a robot who wants to paint",
    "a girl who finds a map in the attic",
    "a city under the sea",
    "an old clockmaker and his last clock",
    "a fox who befriends a farmer",
    "a knight who is afraid of the dark",
    "a baker in a small village",
)
MAX_TOKENS = 256
SAMPLING = {"temperature": 0.0, "repeat_penalty": 1.0, "top_k": 40, "top_p": 0.95, "min_p": 0.05}
N_CTX = 4096

T = TypeVar("T")


def _prompt(subject: str) -> str:
    return f"Write a long story about {subject}."


def _library_run(llm: Any, prompt: str) -> dict[str, Any]:
    start = time.perf_counter()
    first = last = None
    text = ""
    stream = llm.create_chat_completion(
        default_model_chat(prompt), max_tokens=MAX_TOKENS, stream=True, **SAMPLING
    )
    for chunk in stream:
        content = chunk["choices"][0]["delta"].get("content")
        if content:
            last = time.perf_counter()
            first = first or last
            text += content
    assert first is not None and last is not None
    return {"first_ms": (first - start) * 1000, "generating_s": last - first, "text": text}


async def _engine_run(engine: Any, prompt: str) -> dict[str, Any]:
    from breeze.engine import InferenceRequest

    start = time.perf_counter()
    first = last = None
    request = InferenceRequest({"text": prompt}, {**SAMPLING, "max_tokens": MAX_TOKENS})
    async for result in engine.submit(request):
        if result.outputs.get("delta"):
            last = time.perf_counter()
            first = first or last
    assert first is not None and last is not None and result.ok, result.error
    return {"first_ms": (first - start) * 1000, "generating_s": last - first,
            "text": result.text, "tokens": int(result.metadata["tokens_generated"])}


async def _on_own_thread(work: Callable[[], T]) -> T:
    """`work` on a new thread, which ends with it."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return await asyncio.wrap_future(pool.submit(work))


def _spread(values: list[float], digits: int = 1) -> dict[str, Any]:
    return {"median": round(statistics.median(values), digits),
            "range": [round(min(values), digits), round(max(values), digits)]}


async def _measure() -> dict[str, object]:
    import llama_cpp

    from breeze.engine import Engine, Registry
    from breeze.engine.models import resolve
    from breeze.runners.llama_cpp import LlamaCppRunner

    threads = os.cpu_count() or 1
    engine = Engine(Registry([LlamaCppRunner()]))
    await engine.preload(params={"n_ctx": N_CTX, "n_threads": threads})
    llm = llama_cpp.Llama(str(resolve(None)), n_ctx=N_CTX, n_threads=threads,
                          n_threads_batch=threads, verbose=False)
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    for i, subject in enumerate(SUBJECTS):
        prompt = _prompt(subject)

        async def engine_side(prompt: str = prompt) -> None:
            ours.append(await _engine_run(engine, prompt))

        async def library_side(prompt: str = prompt) -> None:
            theirs.append(await _on_own_thread(lambda: _library_run(llm, prompt)))

        pair = (engine_side, library_side) if i % 2 else (library_side, engine_side)
        for side in pair:
            await side()
    llm.close()
    await engine.aclose()
    # one count for both: the engine's; the texts are compared
    ours_tps = [(r["tokens"] - 1) / r["generating_s"] for r in ours]
    raw_tps = [(o["tokens"] - 1) / r["generating_s"] for o, r in zip(ours, theirs, strict=True)]
    ratios = [a / b for a, b in zip(ours_tps, raw_tps, strict=True)]
    first_differences = [o["first_ms"] - r["first_ms"] for o, r in zip(ours, theirs, strict=True)]
    return {
        "benchmark": "llm_throughput",
        "model": "SmolLM2-135M-Instruct.Q4_1",
        "threads": threads,
        "tokens": [r["tokens"] for r in ours],
        "pairs": len(SUBJECTS),
        "same_output": all(o["text"] == r["text"] for o, r in zip(ours, theirs, strict=True)),
        "engine_tokens_per_s": _spread(ours_tps),
        "llama_cpp_python_tokens_per_s": _spread(raw_tps),
        "throughput_ratio": _spread(ratios, 3),
        "throughput_goal": 1.03,
        "engine_ttft_ms": _spread([r["first_ms"] for r in ours]),
        "llama_cpp_python_ttft_ms": _spread([r["first_ms"] for r in theirs]),
        "ttft_difference_ms": _spread(first_differences),
    }


def main() -> None:
    print(json.dumps(asyncio.run(_measure())), flush=True)


if __name__ == "__main__":
    main()
