"""Property tests of the blocking bridge under random delays, cancel points and failures."""

from __future__ import annotations

import asyncio
import random
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from breeze.engine import CancelToken, InferenceResult, iterate_blocking


def make_backend(n: int, fail_at: int | None, audio_every: int, seed: int):
    rng = random.Random(seed)

    def backend(emit):
        text = ""
        for i in range(n):
            if fail_at == i:
                raise RuntimeError("boom")
            if audio_every and i % audio_every == 0:
                emit(InferenceResult.success({"audio": bytes([i % 256])}, {"seq": i}, partial=True))
            delta = f"{i},"
            text += delta
            if not emit(InferenceResult.success({"text": text, "delta": delta}, partial=True)):
                return
            if rng.random() < 0.2:
                time.sleep(rng.random() / 2000)
        emit(InferenceResult.success({"text": text}, {"finish_reason": "stop"}))

    return backend


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 200),
    fail_at=st.one_of(st.none(), st.integers(0, 200)),
    audio_every=st.sampled_from([0, 1, 7]),
    cancel_at=st.one_of(st.none(), st.integers(0, 100)),
    consumer_delay=st.sampled_from([0.0, 0.0005]),
    maxsize=st.integers(1, 8),
    seed=st.integers(0, 1000),
)
def test_bridge_properties(n, fail_at, audio_every, cancel_at, consumer_delay, maxsize, seed):
    async def run():
        token = CancelToken()
        backend = make_backend(n, fail_at, audio_every, seed)
        results = []
        async for r in iterate_blocking(backend, token, maxsize=maxsize):
            results.append(r)
            if cancel_at is not None and len(results) == cancel_at:
                token.cancel()
            if consumer_delay:
                await asyncio.sleep(consumer_delay)
        return results, token

    results, token = asyncio.run(run())
    # exactly one terminal, last
    assert [r.partial for r in results].count(False) == 1 and not results[-1].partial
    texts = [r.text for r in results if "text" in r.outputs]
    # order preserved and text only grows
    for a, b in zip(texts, texts[1:], strict=False):
        assert b.startswith(a)
    # coalescing never loses text: the deltas seen add up to the text seen
    seen = "".join(r.outputs.get("delta", "") for r in results if r.partial)
    last_partial = [r.text for r in results if r.partial and "text" in r.outputs]
    if last_partial:
        assert seen == last_partial[-1]
    # audio chunks are never dropped or reordered while not cancelled
    audio = [r.metadata["seq"] for r in results if "audio" in r.outputs]
    assert audio == sorted(audio)
    if not token.cancelled and audio_every and (fail_at is None or fail_at >= n):
        assert audio == list(range(0, n, audio_every))
    if fail_at is not None and fail_at < n and not token.cancelled:
        assert results[-1].error is not None and results[-1].error.code == "E101"
