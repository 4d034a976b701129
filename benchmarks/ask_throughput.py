"""`breeze ask --json` as a process vs a process streaming llama-cpp-python's own chat API.

All processes get the same model file (the embedded SmolLM2), prompt, greedy sampling,
threads and 256 tokens; each prints one JSON line per streamed piece (breeze a result, the
others llama-cpp-python's chunk). The parent times the lines as they arrive: tokens/s from the
first to the last line with text, and first text from the moment the process is started
(start-up, model load and prompt included). Runs go in rounds of three, which one goes first
turning from round to round; each ratio is the median of the rounds' ratios, with their range.
`breeze` runs as installed, with its default settings (the guardian on, flash attention on) in
fresh config and data directories. The library runs as it opens a model by default (flash
attention off: what a user of the library gets) and, under `same_settings`, with flash
attention on (the engine's own cost, the settings aside; its text must be breeze's, whose
token count then serves for both). The library's default side counts its chunks with text,
one a token.
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
ROUNDS = 9
HELD_TAIL_CHARS = 64  # the most the guardian holds back at the end of a cut reply


def _breeze_command(threads: int) -> list[str]:
    breeze = Path(sys.executable).with_name("breeze")
    params = {**SAMPLING, "max_tokens": MAX_TOKENS, "n_threads": threads, "n_ctx": N_CTX}
    command = [str(breeze), "ask", "--json"]
    for key, value in params.items():
        command += ["-p", f"{key}={value}"]
    return [*command, PROMPT]


def _library_command(model: str, threads: int, flash_attn: bool) -> list[str]:
    config = json.dumps({"model": model, "threads": threads, "flash_attn": flash_attn})
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
    text, pieces = "", 0
    line: dict[str, Any] = {}
    for raw in process.stdout:
        arrived = time.perf_counter()
        line = json.loads(raw)
        piece = text_of(line)
        if piece:
            first = first or arrived
            last = arrived
            text += piece
            pieces += 1
    status = process.wait()
    assert status == 0 and first is not None and last is not None, (command[:3], status)
    return {"first_text_ms": (first - began) * 1000, "generating_s": last - first,
            "text": text, "pieces": pieces, "last_line": line}


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
    breeze = _breeze_command(threads)
    ours: list[dict[str, Any]] = []
    theirs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="breeze-bench-") as tmp:
        def run_breeze() -> None:
            with tempfile.TemporaryDirectory(dir=tmp) as home:  # a fresh config each run
                ours.append(_run(breeze, _breeze_text, _breeze_env(Path(home))))

        def library(flash_attn: bool) -> Callable[[], None]:
            command = _library_command(str(resolve(None)), threads, flash_attn)
            return lambda: theirs[flash_attn].append(
                _run(command, _library_text, dict(os.environ)))

        sides = [run_breeze, library(False), library(True)]
        for side in sides:  # warm up: the page cache, the guardian's classifier cache
            side()
        ours.clear()
        theirs[False].clear()
        theirs[True].clear()
        for i in range(ROUNDS):
            for side in sides[i % 3:] + sides[:i % 3]:
                side()
    tokens = int(ours[-1]["last_line"]["metadata"]["tokens_generated"])
    ours_tps = [(tokens - 1) / r["generating_s"] for r in ours]
    default_tps = [(r["pieces"] - 1) / r["generating_s"] for r in theirs[False]]
    same_tps = [(tokens - 1) / r["generating_s"] for r in theirs[True]]
    ours_first = [r["first_text_ms"] for r in ours]

    def compared(library_tps: list[float], runs: list[dict[str, Any]]) -> dict[str, Any]:
        first = [r["first_text_ms"] for r in runs]
        return {
            "llama_cpp_python_tokens_per_s": _spread(library_tps),
            "throughput_ratio": _spread(
                [a / b for a, b in zip(ours_tps, library_tps, strict=True)], 3),
            "llama_cpp_python_first_text_ms": _spread(first),
            "first_text_difference_ms": _spread(
                [a - b for a, b in zip(ours_first, first, strict=True)]),
        }

    return {
        "benchmark": "ask_throughput",
        "model": "SmolLM2-135M-Instruct.Q4_1",
        "threads": threads,
        "tokens": tokens,
        "rounds": ROUNDS,
        "breeze_ask_tokens_per_s": _spread(ours_tps),
        "breeze_ask_first_text_ms": _spread(ours_first),
        **compared(default_tps, theirs[False]),
        "throughput_goal": 1.03,
        "same_settings": {
            "same_output": all(_same_reply(a["text"], b["text"])
                               for a, b in zip(ours, theirs[True], strict=True)),
            **compared(same_tps, theirs[True]),
        },
    }


def _library_child(config: dict[str, Any]) -> None:
    """The other side: llama-cpp-python's chat completion, a JSON line per chunk."""
    import llama_cpp

    threads = int(config["threads"])
    llm = llama_cpp.Llama(config["model"], n_ctx=N_CTX, n_threads=threads,
                          n_threads_batch=threads, flash_attn=bool(config["flash_attn"]),
                          verbose=False)
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
