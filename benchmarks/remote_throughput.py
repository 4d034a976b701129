"""Remote LLM streaming through the engine vs the raw `openai` client stream.

Both read the same `python -m llama_cpp.server` (the embedded SmolLM2, started here on
127.0.0.1) with the same prompt, greedy sampling and 256 tokens, alternating. Reports tokens/s
(first to last token, at the consumer) and TTFT for both; the ratio is the median of the
ratios of back-to-back pairs, which the load of a shared machine affects least. The engine runs
with its default settings (as `breeze ask` does): partial pacing, a client per request.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

PROMPT = "Write a long story about a dragon who learns to fly."
MAX_TOKENS = 256
RUNS = 7
MODEL = "smollm2"


def _start_server() -> tuple[subprocess.Popen[bytes], str]:
    from breeze.engine.models import resolve

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(resolve(None)),
         "--model_alias", MODEL, "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "2048", "--n_threads", str(os.cpu_count() or 1)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(1200):
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=1):
                return server, url
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("llama_cpp.server did not start")


async def _raw_run(client) -> tuple[float, float, int, str]:
    start = time.perf_counter()
    first = last = None
    text, tokens = "", 0
    stream = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": PROMPT}], stream=True,
        max_tokens=MAX_TOKENS, temperature=0.0,
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            last = time.perf_counter()
            first = first or last
            text += chunk.choices[0].delta.content
            tokens += 1
    assert first is not None and last is not None
    return (first - start) * 1000, last - first, tokens, text


async def _engine_run(engine) -> tuple[float, float, int, str]:
    from breeze.engine import InferenceRequest

    start = time.perf_counter()
    first = last = None
    request = InferenceRequest({"text": PROMPT}, {"temperature": 0.0, "max_tokens": MAX_TOKENS})
    async for result in engine.submit(request):
        if result.text:
            last = time.perf_counter()
            first = first or last
    assert first is not None and last is not None and result.ok, result.error
    return (first - start) * 1000, last - first, result.metadata["tokens_generated"], result.text


async def _measure(url: str) -> dict[str, object]:
    import openai

    from breeze.engine import Engine, Registry
    from breeze.runners._remote_config import RemoteProfile
    from breeze.runners.openai_compat import OpenAIRunner

    engine = Engine(Registry([OpenAIRunner(RemoteProfile("bench", url, MODEL))]))
    ours: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    same_text = True
    async with openai.AsyncOpenAI(base_url=url, api_key="none", max_retries=0) as client:
        await _raw_run(client)  # warm up both paths: the model, the connection, the imports
        await _engine_run(engine)
        for _ in range(RUNS):
            raw_ttft, raw_gen, raw_tokens, raw_text = await _raw_run(client)
            ttft, gen, tokens, text = await _engine_run(engine)
            same_text = same_text and text == raw_text and tokens == raw_tokens
            ours.append((ttft, (tokens - 1) / gen))
            theirs.append((raw_ttft, (raw_tokens - 1) / raw_gen))
    await engine.aclose()
    ours_tps = statistics.median(t for _, t in ours)
    raw_tps = statistics.median(t for _, t in theirs)
    ratio = statistics.median(a / b for (_, a), (_, b) in zip(ours, theirs, strict=True))
    ours_ttft = statistics.median(t for t, _ in ours)
    raw_ttft = statistics.median(t for t, _ in theirs)
    return {
        "benchmark": "remote_throughput",
        "server": "llama_cpp.server",
        "model": "SmolLM2-135M-Instruct.Q4_1",
        "tokens": tokens,
        "runs": RUNS,
        "same_output": same_text,
        "engine_tokens_per_s": round(ours_tps, 1),
        "openai_client_tokens_per_s": round(raw_tps, 1),
        "throughput_ratio": round(ratio, 3),
        "engine_ttft_ms": round(ours_ttft, 1),
        "openai_client_ttft_ms": round(raw_ttft, 1),
        "ttft_difference_ms": round(ours_ttft - raw_ttft, 1),
    }


def main() -> None:
    server, url = _start_server()
    try:
        result = asyncio.run(_measure(url))
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
