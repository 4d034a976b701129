"""Engine overhead: 100,000 tiny partials from a runner, delivered through `Engine.submit`,
against iterating the same runner directly. Ratio = partials/s through the engine over
partials/s direct (coalescing may deliver them in fewer, merged results)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from breeze.engine import (
    BlockingRunner,
    CancelToken,
    Capability,
    Emit,
    Engine,
    EngineSettings,
    InferenceRequest,
    InferenceResult,
    Registry,
    Runner,
)

N = 100_000


def _partial(i: int) -> InferenceResult:
    return InferenceResult({"delta": "x"}, {"i": i}, None, True)


class AsyncTiny(Runner):
    name = "bench-async"
    capabilities = frozenset({Capability.LLM})

    async def stream(self, request, token: CancelToken) -> AsyncIterator[InferenceResult]:
        for i in range(N):
            yield _partial(i)
        yield InferenceResult.success({"n": N})


class ThreadTiny(BlockingRunner):
    name = "bench-thread"
    capabilities = frozenset({Capability.LLM})

    def generate(self, request, token: CancelToken, emit: Emit) -> None:
        for i in range(N):
            emit(_partial(i))
        emit(InferenceResult.success({"n": N}))


async def _direct(runner: Runner) -> float:
    """The runner's own iteration: its async generator, or its backend emitting in place."""
    request, token = InferenceRequest({"text": "x"}), CancelToken()
    results: list[InferenceResult] = []
    start = time.perf_counter()
    if isinstance(runner, BlockingRunner):
        runner.generate(request, token, lambda r: results.append(r) is None)
    else:
        results = [r async for r in runner.stream(request, token)]
    assert len(results) == N + 1
    return N / (time.perf_counter() - start)


async def _through_engine(runner: Runner) -> tuple[float, int]:
    engine = Engine(Registry([runner]), EngineSettings(emit_interval_ms=0))
    start = time.perf_counter()
    delivered = represented = 0
    async for result in engine.submit(InferenceRequest({"text": "x"})):
        if result.partial:
            delivered += 1
            represented += int(result.metadata.get("coalesced", 1))
    assert represented == N, represented
    return N / (time.perf_counter() - start), delivered


async def _measure() -> dict[str, object]:
    out: dict[str, object] = {"benchmark": "engine_overhead", "partials": N}
    for label, runner in (("async_runner", AsyncTiny()), ("thread_runner", ThreadTiny())):
        direct = max([await _direct(runner) for _ in range(3)])
        runs = [await _through_engine(runner) for _ in range(3)]
        engine_rate, delivered = max(runs)
        out[label] = {
            "direct_partials_per_s": round(direct),
            "engine_partials_per_s": round(engine_rate),
            "results_delivered": delivered,
            "ratio": round(engine_rate / direct, 3),
        }
    return out


def main() -> None:
    print(json.dumps(asyncio.run(_measure())), flush=True)


if __name__ == "__main__":
    main()
