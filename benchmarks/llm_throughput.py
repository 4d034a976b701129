"""LLM generation through the engine vs llama-cpp-python's own streaming chat API.

Same model (the embedded SmolLM2), greedy sampling, 256 tokens and threads, in one process,
in rounds of three back to back, which side goes first turning from round to round. Each round
has a prompt of its own, the same for all sides, so none finds it in its KV cache (all reuse
the chat template's opening, as they would in a chat). The sides:

- the engine with its default settings (flash attention on);
- llama-cpp-python's `create_chat_completion(stream=True)` as the library opens a model by
  default (flash attention off): what a user of the library gets;
- the same with the engine's settings (flash attention on): the engine's own cost, the
  settings aside; its text must be the engine's, token for token.

The library runs on a thread that ends after the run, as the engine's runner does: llama.cpp's
OpenMP keeps a team of threads for every thread that has decoded, and two teams on the cores
slow every side alike.

Reports tokens/s (first to last token, at the consumer) and time to the first text for
each side, each as the median and range of the runs; each ratio is the median of the rounds'
ratios (what a busy machine affects least), with their range.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
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
    return {"first_ms": (first - start) * 1000, "generating_s": last - first, "text": text,
            "tokens": len(llm.tokenize(text.encode(), add_bos=False, special=False))}


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
    opened = {flash: llama_cpp.Llama(str(resolve(None)), n_ctx=N_CTX, n_threads=threads,
                                     n_threads_batch=threads, flash_attn=flash, verbose=False)
              for flash in (False, True)}
    ours: list[dict[str, Any]] = []
    theirs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for i, subject in enumerate(SUBJECTS):
        prompt = _prompt(subject)

        async def engine_side(prompt: str = prompt) -> None:
            ours.append(await _engine_run(engine, prompt))

        def library_side(flash: bool, prompt: str = prompt) -> Callable[[], Awaitable[None]]:
            async def run() -> None:
                llm = opened[flash]
                theirs[flash].append(await _on_own_thread(lambda: _library_run(llm, prompt)))
            return run

        sides = [engine_side, library_side(False), library_side(True)]
        for side in sides[i % 3:] + sides[:i % 3]:
            await side()
    for llm in opened.values():
        llm.close()
    await engine.aclose()
    ours_tps = [(r["tokens"] - 1) / r["generating_s"] for r in ours]
    default_tps = [(r["tokens"] - 1) / r["generating_s"] for r in theirs[False]]
    # the same text as the engine's: one count for both, the engine's
    same_tps = [(o["tokens"] - 1) / r["generating_s"]
                for o, r in zip(ours, theirs[True], strict=True)]

    def ratios(library: list[float]) -> dict[str, Any]:
        return _spread([a / b for a, b in zip(ours_tps, library, strict=True)], 3)

    def ttft_differences(library: list[dict[str, Any]]) -> dict[str, Any]:
        return _spread([o["first_ms"] - r["first_ms"] for o, r in zip(ours, library,
                                                                      strict=True)])

    return {
        "benchmark": "llm_throughput",
        "model": "SmolLM2-135M-Instruct.Q4_1",
        "threads": threads,
        "tokens": [r["tokens"] for r in ours],
        "rounds": len(SUBJECTS),
        "engine_tokens_per_s": _spread(ours_tps),
        "llama_cpp_python_tokens_per_s": _spread(default_tps),
        "throughput_ratio": ratios(default_tps),
        "throughput_goal": 1.03,
        "engine_ttft_ms": _spread([r["first_ms"] for r in ours]),
        "llama_cpp_python_ttft_ms": _spread([r["first_ms"] for r in theirs[False]]),
        "ttft_difference_ms": ttft_differences(theirs[False]),
        "same_settings": {
            "same_output": all(o["text"] == r["text"]
                               for o, r in zip(ours, theirs[True], strict=True)),
            "llama_cpp_python_tokens_per_s": _spread(same_tps),
            "throughput_ratio": ratios(same_tps),
            "llama_cpp_python_ttft_ms": _spread([r["first_ms"] for r in theirs[True]]),
            "ttft_difference_ms": ttft_differences(theirs[True]),
        },
    }


def main() -> None:
    print(json.dumps(asyncio.run(_measure())), flush=True)


if __name__ == "__main__":
    main()
