"""How a blocking runner's results reach the event loop: its worker wakes the loop only when
the consumer waits for a result, and partials are read no more often than they are paced."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from breeze.engine import CancelToken, InferenceResult, iterate_blocking
from breeze.engine._channel import ResultChannel
from breeze.engine.bridge import Pacing, pacing


def partial(i: int) -> InferenceResult:
    return InferenceResult.success({"delta": f"{i},"}, partial=True)


def in_thread(work) -> None:
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()


async def test_a_producer_thread_wakes_the_loop_only_when_the_consumer_waits(monkeypatch):
    loop = asyncio.get_running_loop()
    wakes = []
    original = loop.call_soon_threadsafe

    def counted(*args):
        wakes.append(args)
        return original(*args)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
    channel = ResultChannel(loop)
    in_thread(lambda: [channel.put(partial(i)) for i in range(50)])
    assert wakes == []  # nobody was waiting: the partials merged, unannounced
    merged = await channel.get()
    assert merged.outputs["delta"] == "".join(f"{i}," for i in range(50))
    waiting = asyncio.ensure_future(channel.get())
    await asyncio.sleep(0.01)  # the consumer now waits
    in_thread(lambda: channel.put(partial(50)))
    assert len(wakes) == 1
    assert (await asyncio.wait_for(waiting, 5)).outputs["delta"] == "50,"


def counting(count: int):
    """A blocking backend that streams `count` cumulative partials, 2 ms apart."""
    def backend(emit):
        text = ""
        for i in range(count):
            text += f"{i},"
            emit(InferenceResult.success({"text": text, "delta": f"{i},"}, partial=True))
            time.sleep(0.002)
        emit(InferenceResult.success({"text": text}))

    return backend


@pytest.mark.parametrize("interval", [0.0, 0.03])
async def test_the_bridge_reads_partials_no_more_often_than_they_are_paced(interval):
    paced = pacing.set(Pacing(interval, showing=True))
    try:
        began = time.perf_counter()
        results = [r async for r in iterate_blocking(counting(60), CancelToken())]
        elapsed = time.perf_counter() - began
    finally:
        pacing.reset(paced)
    partials = [r for r in results if r.partial]
    every_delta = "".join(f"{i}," for i in range(60))
    assert "".join(r.outputs["delta"] for r in partials) == every_delta  # merged, not lost
    assert results[-1].text == every_delta and not results[-1].partial
    if interval:
        assert len(partials) <= elapsed / interval + 1
    else:
        assert len(partials) > elapsed / 0.03 + 1  # unpaced, the same backend is read more


async def test_partials_go_through_at_once_until_the_consumer_is_shown_something():
    paced = pacing.set(Pacing(interval_s=5.0))  # nothing has been shown yet
    try:
        results = [r async for r in iterate_blocking(counting(30), CancelToken())]
    finally:
        pacing.reset(paced)
    assert len([r for r in results if r.partial]) > 2  # paced, there would be one
