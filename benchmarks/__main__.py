"""`make bench`: run every benchmark; each prints one JSON object."""

from __future__ import annotations

import sys

from . import (
    asr,
    engine_overhead,
    guardian,
    llm_throughput,
    remote_throughput,
    tts_latency,
    tui_render,
)

BENCHMARKS = {
    "engine_overhead": engine_overhead.main,
    "llm_throughput": llm_throughput.main,
    "tui_render": tui_render.main,
    "guardian": guardian.main,
    "asr": asr.main,
    "remote_throughput": remote_throughput.main,
    "tts_latency": tts_latency.main,
}


def main() -> None:
    chosen = sys.argv[1:] or list(BENCHMARKS)
    for name in chosen:
        BENCHMARKS[name]()


if __name__ == "__main__":
    main()
