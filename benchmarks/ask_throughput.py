"""`breeze ask --json` as a process vs a process streaming llama-cpp-python's own chat API.

Both processes get the same model file (the embedded SmolLM2), prompt, greedy sampling,
threads and 256 tokens; each prints one JSON line per streamed piece (breeze a result, the
other llama-cpp-python's chunk). The parent times the lines as they arrive: tokens/s from the
first to the last line with text, and first text from the moment the process is started
(start-up, model load and prompt included). Runs alternate, which one goes first swapping
from pair to pair; the ratio is the median of the pairs' ratios, with their range. `breeze`
runs as installed, with its default settings (the guardian on) in fresh config and data
directories. Tokens are counted once, by breeze, for both: the texts are compared.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._chat import default_model_chat

PROMPT = "Write a long story about a dragon who learns to fly."
MAX_TOKENS = 256
SAMPLING = {"temperature": 0.0, "repeat_penalty": 1.0, "top_k": 40, "top_p": 0.95, "min_p": 0.05}
N_CTX = 4096
PAIRS = 9
HELD_TAIL_CHARS = 64  # the most the guardian holds back at the end of a cut reply


def _breeze_command(threads: int) -> list[str]:
    breeze = Path(sys.executable).with_name("breeze")
    params = {**SAMPLING, "max_tokens": MAX_TOKENS, "n_threads": threads, "n_ctx": N_CTX}
    command = [str(breeze), "ask", "--json"]
    for key, value in params.items():
        command += ["-p", f"{key}={value}"]
    return [*command, PROMPT]


def _library_command(model: str, threads: int) -> list[str]:
    config = json.dumps({"model": model, "threads": threads})
    return [sys.executable, "-m", "benchmarks.ask_throughput", "--library-child", config]


def _breeze_text(line: dict[str, Any]) -> str:
    return str(line.get("outputs", {}).get("delta") or "")


def _library_text(line: dict[str, Any]) -> str:
    choices = line.get("choices") or [{}]
    return str(choices[0].get("delta", {}).get("content") or "")


def _run(command: list[str], text_of: Callable[[dict[str, Any]], str],
         env: dict[str, str]) -> dict[str, Any]:
    """Start the process and time its stdout lines; the first and last with text."""
    root = Path(__file__).resolve().parents[1]
    began = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               cwd=root, env=env)
    assert process.stdout is not None
    first = last = None
    text = ""
    line: dict[str, Any] = {}
    for raw in process.stdout:
        arrived = time.perf_counter()
        line = json.loads(raw)
        piece = text_of(line)
        if piece:
            first = first or arrived
            last = arrived
            text += piece
    status = process.wait()
    assert status == 0 and first is not None and last is not None, (command[:3], status)
    return {"first_text_ms": (first - began) * 1000, "generating_s": last - first,
            "text": text, "last_line": line}


def _same_reply(breeze: str, library: str) -> bool:
    """Equal, or breeze's text is the library's but for its end: a reply cut at max_tokens
    ends in a word the guardian does not show (it could be half a card number)."""
    return library.startswith(breeze) and len(library) - len(breeze) <= HELD_TAIL_CHARS


def _breeze_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["XDG_CONFIG_HOME"] = str(home / "config")
    env["XDG_DATA_HOME"] = str(home / "data")
    return env


def _spread(values: list[float], digits: int = 1) -> dict[str, Any]:
    return {"median": round(statistics.median(values), digits),
            "range": [round(min(values), digits), round(max(values), digits)]}


def _measure() -> dict[str, object]:
    from breeze.engine.models import resolve

    threads = os.cpu_count() or 1
    library = _library_command(str(resolve(None)), threads)
    breeze = _breeze_command(threads)
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="breeze-bench-") as tmp:
        def run_breeze(runs: list[dict[str, Any]]) -> None:
            with tempfile.TemporaryDirectory(dir=tmp) as home:  # a fresh config each run
                runs.append(_run(breeze, _breeze_text, _breeze_env(Path(home))))

        def run_library(runs: list[dict[str, Any]]) -> None:
            runs.append(_run(library, _library_text, dict(os.environ)))

        run_breeze([])  # warm up: the page cache, the guardian's classifier cache
        run_library([])
        for i in range(PAIRS):
            pair = [(run_breeze, ours), (run_library, theirs)]
            for run, runs in pair if i % 2 else pair[::-1]:
                run(runs)
    tokens = int(ours[-1]["last_line"]["metadata"]["tokens_generated"])
    same = all(_same_reply(a["text"], b["text"]) for a, b in zip(ours, theirs, strict=True))
    ours_tps = [(tokens - 1) / r["generating_s"] for r in ours]
    raw_tps = [(tokens - 1) / r["generating_s"] for r in theirs]
    ratios = [a / b for a, b in zip(ours_tps, raw_tps, strict=True)]
    ours_first = [r["first_text_ms"] for r in ours]
    raw_first = [r["first_text_ms"] for r in theirs]
    first_differences = [a - b for a, b in zip(ours_first, raw_first, strict=True)]
    return {
        "benchmark": "ask_throughput",
        "model": "SmolLM2-135M-Instruct.Q4_1",
        "threads": threads,
        "tokens": tokens,
        "pairs": PAIRS,
        "same_output": same,
        "breeze_ask_tokens_per_s": _spread(ours_tps),
        "llama_cpp_python_tokens_per_s": _spread(raw_tps),
        "throughput_ratio": _spread(ratios, 3),
        "throughput_goal": 1.03,
        "breeze_ask_first_text_ms": _spread(ours_first),
        "llama_cpp_python_first_text_ms": _spread(raw_first),
        "first_text_difference_ms": _spread(first_differences),
    }


def _library_child(config: dict[str, Any]) -> None:
    """The other side: llama-cpp-python's chat completion, a JSON line per chunk."""
    import llama_cpp

    threads = int(config["threads"])
    llm = llama_cpp.Llama(config["model"], n_ctx=N_CTX, n_threads=threads,
                          n_threads_batch=threads, verbose=False)
    stream = llm.create_chat_completion(default_model_chat(PROMPT),
                                        max_tokens=MAX_TOKENS, stream=True, **SAMPLING)
    for chunk in stream:
        sys.stdout.write(json.dumps(chunk, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    llm.close()


def main() -> None:
    print(json.dumps(_measure()), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--library-child"]:
        _library_child(json.loads(sys.argv[2]))
    else:
        main()
