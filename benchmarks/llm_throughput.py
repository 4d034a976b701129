"""LLM generation through the engine vs llama-cpp-python's own streaming chat API.

Same model (the embedded SmolLM2), prompt, greedy sampling, 256 tokens and threads, in one
process, alternating; the KV cache is cleared before every run so both start cold.
Reports tokens/s (first to last token, at the consumer) and TTFT for both, and the ratios.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time

PROMPT = "Write a long story about a dragon who learns to fly."
MAX_TOKENS = 256
SAMPLING = {"temperature": 0.0, "repeat_penalty": 1.0, "top_k": 40, "top_p": 0.95, "min_p": 0.05}
RUNS = 3


def _raw_run(llm) -> tuple[float, float, str]:
    llm.reset()
    start = time.perf_counter()
    first = last = None
    text = ""
    stream = llm.create_chat_completion(
        [{"role": "user", "content": PROMPT}], max_tokens=MAX_TOKENS, stream=True, **SAMPLING
    )
    for chunk in stream:
        content = chunk["choices"][0]["delta"].get("content")
        if content:
            last = time.perf_counter()
            first = first or last
            text += content
    assert first is not None and last is not None
    return (first - start) * 1000, last - first, text


async def _engine_run(engine, runner) -> tuple[float, float, str, int]:
    from breeze.engine import InferenceRequest

    runner._llm.reset()
    start = time.perf_counter()
    first = last = None
    request = InferenceRequest({"text": PROMPT}, {**SAMPLING, "max_tokens": MAX_TOKENS})
    async for result in engine.submit(request):
        if result.text:
            last = time.perf_counter()
            first = first or last
    terminal = result
    assert first is not None and last is not None and terminal.ok
    return (first - start) * 1000, last - first, terminal.text, terminal.metadata[
        "tokens_generated"
    ]


async def _measure() -> dict[str, object]:
    import llama_cpp

    from breeze.engine import Engine, Registry
    from breeze.engine.models import resolve
    from breeze.runners.llama_cpp import LlamaCppRunner

    threads = os.cpu_count() or 1
    runner = LlamaCppRunner()
    engine = Engine(Registry([runner]))
    await engine.run(
        __import__("engine").InferenceRequest({"text": "hi"}, {"max_tokens": 1})
    )  # load
    llm = llama_cpp.Llama(str(resolve(None)), n_ctx=4096, n_threads=threads,
                          n_threads_batch=threads, verbose=False)
    ours: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    same_text = True
    for _ in range(RUNS):
        raw_ttft, raw_gen, raw_text = await asyncio.to_thread(_raw_run, llm)
        ttft, gen, text, tokens = await _engine_run(engine, runner)
        same_text = same_text and text == raw_text
        ours.append((ttft, (tokens - 1) / gen))
        theirs.append((raw_ttft, (tokens - 1) / raw_gen))
    llm.close()
    await engine.aclose()
    ours_tps = statistics.median(t for _, t in ours)
    raw_tps = statistics.median(t for _, t in theirs)
    ours_ttft = statistics.median(t for t, _ in ours)
    raw_ttft = statistics.median(t for t, _ in theirs)
    return {
        "benchmark": "llm_throughput",
        "model": "SmolLM2-135M-Instruct.Q4_1",
        "threads": threads,
        "tokens": tokens,
        "same_output": same_text,
        "engine_tokens_per_s": round(ours_tps, 1),
        "llama_cpp_python_tokens_per_s": round(raw_tps, 1),
        "throughput_ratio": round(ours_tps / raw_tps, 3),
        "engine_ttft_ms": round(ours_ttft, 1),
        "llama_cpp_python_ttft_ms": round(raw_ttft, 1),
        "ttft_difference_ms": round(ours_ttft - raw_ttft, 1),
    }


def main() -> None:
    print(json.dumps(asyncio.run(_measure())), flush=True)


if __name__ == "__main__":
    main()
