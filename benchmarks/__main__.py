"""`make bench`: run every benchmark; each prints one JSON object."""

from __future__ import annotations

import sys

from . import engine_overhead, llm_throughput

BENCHMARKS = {"engine_overhead": engine_overhead.main, "llm_throughput": llm_throughput.main}


def main() -> None:
    chosen = sys.argv[1:] or list(BENCHMARKS)
    for name in chosen:
        BENCHMARKS[name]()


if __name__ == "__main__":
    main()
