"""The streaming contract (DESIGN.md), asserted for every runner in cases.CASES."""

from __future__ import annotations

import asyncio
import os
import threading

from breeze.engine import CancelToken, Engine, InferenceResult

from .cases import ContractCase
from .rules import (
    check_cancelled,
    check_error_result,
    check_progressive,
    check_single_terminal,
    check_stream,
)


async def collect(engine: Engine, request, *, cancel_after: int | None = None, delay: float = 0):
    handle = engine.submit(request)
    results: list[InferenceResult] = []
    async for result in handle:
        results.append(result)
        if cancel_after is not None and len(results) == cancel_after:
            handle.cancel()
        if delay:
            await asyncio.sleep(delay)
    return results


async def test_streams_progressively(contract_case: ContractCase, contract_engine: Engine):
    results = await collect(
        contract_engine, contract_case.request(), cancel_after=1 if contract_case.hangs else None
    )
    check_progressive(results)
    check_stream(results, contract_case.capability)
    if contract_case.fails_mid_stream:
        check_error_result(results)
        assert results[-1].text, "an error mid-stream keeps the output so far"
    elif not contract_case.hangs:
        assert results[-1].ok, results[-1].error
    meta = results[-1].metadata
    assert meta["runner_name"] == contract_engine.runner.name  # type: ignore[attr-defined]
    assert meta["request_id"] == results[0].metadata["request_id"]
    assert "elapsed_ms" in meta
    assert sum("ttft_ms" in r.metadata for r in results) >= 1


async def test_runner_stream_itself_keeps_the_contract(contract_case: ContractCase):
    """The raw runner, without the engine's guards: read to exhaustion, one terminal last."""
    runner = contract_case.make_runner()
    token = CancelToken()
    request = contract_case.request()
    schema = runner.param_schema()
    request = type(request)(request.inputs, schema.validate(request.params))
    await asyncio.to_thread(runner.load, request.params)
    if contract_case.hangs:
        asyncio.get_running_loop().call_later(0.2, token.cancel)
    results = [r async for r in runner.stream(request, token)]
    check_single_terminal(results)
    check_stream(results, contract_case.capability)


async def test_bad_request_is_an_error_result(contract_case: ContractCase, contract_engine):
    results = await collect(contract_engine, contract_case.bad_request())
    check_error_result(results)


async def test_cancel_ends_with_cancelled_and_stops_work(contract_case, contract_engine):
    if contract_case.fails_mid_stream:
        return  # nothing to cancel: it fails by itself (covered by the test above)
    results = await collect(contract_engine, contract_case.long_request(), cancel_after=1)
    check_cancelled(results)
    if contract_case.work_done is not None:
        runner = contract_engine.runner  # type: ignore[attr-defined]
        done = contract_case.work_done(runner)
        await asyncio.sleep(0.3)
        assert contract_case.work_done(runner) == done, "the backend worked after cancel"


async def test_slow_consumer_loses_no_text(contract_case: ContractCase, contract_engine):
    if contract_case.hangs or contract_case.fails_mid_stream:
        return
    await collect(contract_engine, contract_case.request())  # same backend state for both
    fast = await collect(contract_engine, contract_case.request())
    slow = await collect(contract_engine, contract_case.request(), delay=0.01)
    assert slow[-1].text == fast[-1].text
    deltas = "".join(r.outputs.get("delta", "") for r in slow if r.partial)
    if deltas:
        assert slow[-1].text.startswith(deltas), "coalescing lost part of the text"


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _threads() -> int:
    """Threads, less the event loop's default executor: a bounded pool (asyncio.to_thread)
    that grows up to its size on demand, which is not a leak."""
    return sum(not t.name.startswith("asyncio_") for t in threading.enumerate())


async def test_no_leak_after_many_submit_cancel_cycles(contract_case, contract_engine):
    async def cycle() -> None:
        await collect(contract_engine, contract_case.long_request(), cancel_after=1)

    await cycle()  # warm up: the first load, executor threads
    threads, fds = _threads(), _open_fds()
    for _ in range(contract_case.cycles):
        await cycle()
    for _ in range(50):  # worker threads finish after they notice the cancel
        if _threads() <= threads:
            break
        await asyncio.sleep(0.05)
    assert _threads() <= threads, "worker threads leaked"
    assert _open_fds() <= fds + 2, "file descriptors leaked"
