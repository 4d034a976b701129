"""`make bench`: run every benchmark; each prints one JSON object."""

from __future__ import annotations

import gc
import sys

from . import (
    ask_throughput,
    asr,
    asr_accuracy,
    engine_overhead,
    guardian,
    history_fit,
    llm_throughput,
    remote_throughput,
    talk,
    tts_intelligibility,
    tts_latency,
    tui_render,
)

BENCHMARKS = {
    "engine_overhead": engine_overhead.main,
    "llm_throughput": llm_throughput.main,
    "ask_throughput": ask_throughput.main,
    "tui_render": tui_render.main,
    "guardian": guardian.main,
    "asr": asr.main,
    "asr_accuracy": asr_accuracy.main,
    "remote_throughput": remote_throughput.main,
    "tts_latency": tts_latency.main,
    "tts_intelligibility": tts_intelligibility.main,
    "history_fit": history_fit.main,
    "talk": talk.main,
}


def main() -> None:
    chosen = sys.argv[1:] or list(BENCHMARKS)
    try:
        for name in chosen:
            BENCHMARKS[name]()
    finally:
        gc.collect()  # native models freed now, not while the interpreter shuts down


if __name__ == "__main__":
    main()
