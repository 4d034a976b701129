"""The engine holds every runner to the streaming contract, whatever the runner does: an
error result ends the stream, a crash or a stray CancelledError is an error and not a cancel,
a silent runner times out, a hung worker neither holds up its consumer nor goes unnoticed, and
a consumer that walks away releases the worker. Event-driven: no test waits a fixed time."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import AsyncIterator

import pytest

from breeze.engine import (
    BlockingRunner,
    Cancelled,
    CancelToken,
    Capability,
    Emit,
    Engine,
    EngineSettings,
    InferenceRequest,
    InferenceResult,
    Registry,
    Runner,
    RunnerError,
)
from breeze.engine.bridge import stragglers

WAIT_S = 10.0  # an upper bound on waits for events that come at once when all is well


def make_engine(*runners: Runner, **settings: object) -> Engine:
    settings.setdefault("emit_interval_ms", 0)
    return Engine(Registry(runners), EngineSettings(**settings))  # type: ignore[arg-type]


def text_request() -> InferenceRequest:
    return InferenceRequest({"text": "hi"})


def partial(text: str) -> InferenceResult:
    return InferenceResult.success({"text": text, "delta": text[-1:]}, partial=True)


def error_partial(text: str) -> InferenceResult:
    return InferenceResult(
        {"text": text}, {}, RunnerError.of("E101", "the backend broke"), partial=True
    )


async def wait_event(event: threading.Event) -> bool:
    return await asyncio.to_thread(event.wait, WAIT_S)


async def collect(handle) -> list[InferenceResult]:
    return await asyncio.wait_for(_drain(handle), WAIT_S)


async def _drain(handle) -> list[InferenceResult]:
    return [r async for r in handle]


def assert_one_terminal_last(results: list[InferenceResult]) -> None:
    assert [r.partial for r in results].count(False) == 1 and not results[-1].partial
    assert all(r.error is None for r in results[:-1]), "an error result was not the last"


# -- an error result is terminal --------------------------------------------------------------


class BlockingErrorThenMore(BlockingRunner):
    """Emits a partial, an error marked partial, then goes on as if nothing happened."""

    name = "blocking-error-then-more"
    capabilities = frozenset({Capability.LLM})

    def __init__(self) -> None:
        self.told_to_stop = threading.Event()

    def generate(self, request: InferenceRequest, token: CancelToken, emit: Emit) -> None:
        emit(partial("a"))
        accepted = emit(error_partial("ab"))
        if not accepted and token.wait(WAIT_S):
            self.told_to_stop.set()
        emit(partial("abc"))
        emit(InferenceResult.success({"text": "abcd"}, {"finish_reason": "stop"}))


class AsyncErrorThenMore(Runner):
    name = "async-error-then-more"
    capabilities = frozenset({Capability.LLM})

    def __init__(self) -> None:
        self.closed = asyncio.Event()
        self.after_error = 0

    async def stream(
        self, request: InferenceRequest, token: CancelToken
    ) -> AsyncIterator[InferenceResult]:
        try:
            yield partial("a")
            yield error_partial("ab")
            self.after_error += 1
            yield partial("abc")
            yield InferenceResult.success({"text": "abcd"}, {"finish_reason": "stop"})
        finally:
            self.closed.set()


async def test_a_partial_error_from_a_blocking_runner_ends_the_stream():
    runner = BlockingErrorThenMore()
    results = await collect(make_engine(runner).submit(text_request()))
    assert_one_terminal_last(results)
    assert results[-1].error is not None and results[-1].error.code == "E101"
    assert results[-1].text == "ab"
    assert await wait_event(runner.told_to_stop), "the worker was not told to stop"


async def test_a_partial_error_from_an_async_runner_ends_the_stream_and_closes_it():
    runner = AsyncErrorThenMore()
    results = await collect(make_engine(runner).submit(text_request()))
    assert_one_terminal_last(results)
    assert results[-1].error is not None and results[-1].error.code == "E101"
    assert results[-1].text == "ab"
    await asyncio.wait_for(runner.closed.wait(), WAIT_S)
    assert runner.after_error == 0, "the runner was read past its error"


# -- crashes and stray cancellations are errors, not cancels ----------------------------------


class RaisesInWorker(BlockingRunner):
    name = "raises-in-worker"
    capabilities = frozenset({Capability.LLM})

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def generate(self, request: InferenceRequest, token: CancelToken, emit: Emit) -> None:
        emit(partial("a"))
        raise self.exc


class RaisesInStream(Runner):
    name = "raises-in-stream"
    capabilities = frozenset({Capability.LLM})

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    async def stream(
        self, request: InferenceRequest, token: CancelToken
    ) -> AsyncIterator[InferenceResult]:
        yield partial("a")
        raise self.exc


@pytest.mark.parametrize(
    "runner",
    [
        RaisesInWorker(SystemExit(3)),
        RaisesInWorker(KeyboardInterrupt()),
        RaisesInWorker(Cancelled("nobody asked")),
        RaisesInStream(asyncio.CancelledError()),
        RaisesInStream(Cancelled("nobody asked")),
    ],
    ids=["SystemExit-in-worker", "KeyboardInterrupt-in-worker", "Cancelled-in-worker",
         "CancelledError-in-stream", "Cancelled-in-stream"],
)
async def test_an_exception_nobody_asked_for_is_an_error(runner: Runner, caplog):
    caplog.set_level(logging.CRITICAL)  # the tracebacks are expected
    results = await collect(make_engine(runner).submit(text_request()))
    assert_one_terminal_last(results)
    terminal = results[-1]
    assert terminal.error is not None and terminal.error.code == "E101", terminal
    assert terminal.metadata.get("finish_reason") != "cancelled"
    assert terminal.text == "a"


class CancelledErrorOnCancel(Runner):
    """Ends by raising CancelledError once its request is cancelled."""

    name = "cancelled-error-on-cancel"
    capabilities = frozenset({Capability.LLM})

    async def stream(
        self, request: InferenceRequest, token: CancelToken
    ) -> AsyncIterator[InferenceResult]:
        yield partial("a")
        await token.wait_async()
        raise asyncio.CancelledError


async def test_a_cancelled_error_after_a_real_cancel_is_a_cancel():
    handle = make_engine(CancelledErrorOnCancel(), cancel_grace_s=WAIT_S).submit(text_request())
    await handle.__anext__()
    handle.cancel()
    terminal = await asyncio.wait_for(handle.result(), WAIT_S)
    assert terminal.ok and terminal.metadata["finish_reason"] == "cancelled"
    assert terminal.text == "a"


# -- the idle timeout -------------------------------------------------------------------------


class SilentAfterOne(Runner):
    """Async: one partial, then nothing (ignores its token); records being closed."""

    name = "silent-after-one"
    capabilities = frozenset({Capability.LLM, Capability.ASR})

    def __init__(self) -> None:
        self.closed = asyncio.Event()
        self.speak = asyncio.Event()

    async def stream(
        self, request: InferenceRequest, token: CancelToken
    ) -> AsyncIterator[InferenceResult]:
        try:
            yield partial("a")
            await self.speak.wait()
            yield InferenceResult.success({"text": "ab"}, {"finish_reason": "stop"})
        finally:
            self.closed.set()


class BlockingSilent(BlockingRunner):
    """A worker that emits once, then waits for its token without emitting."""

    name = "blocking-silent"
    capabilities = frozenset({Capability.LLM})

    def __init__(self) -> None:
        self.stopped = threading.Event()

    def generate(self, request: InferenceRequest, token: CancelToken, emit: Emit) -> None:
        emit(partial("a"))
        if token.wait(WAIT_S):
            self.stopped.set()
        emit(InferenceResult.success({"text": "a"}, {"finish_reason": "cancelled"}))


async def test_a_silent_async_runner_times_out_with_e103_and_is_closed():
    runner = SilentAfterOne()
    handle = make_engine(runner, idle_timeout_s=0.05).submit(text_request())
    results = await collect(handle)
    assert_one_terminal_last(results)
    terminal = results[-1]
    assert terminal.error is not None and terminal.error.code == "E103", terminal
    assert terminal.text == "a"  # what the consumer saw is kept
    await asyncio.wait_for(runner.closed.wait(), WAIT_S)
    assert handle.token.cancelled


async def test_a_silent_blocking_runner_times_out_and_its_worker_is_stopped():
    runner = BlockingSilent()
    results = await collect(make_engine(runner, idle_timeout_s=0.05).submit(text_request()))
    assert results[-1].error is not None and results[-1].error.code == "E103"
    assert await wait_event(runner.stopped), "the worker was not cancelled"


async def test_a_live_microphone_may_be_silent_longer_than_the_idle_timeout():
    quiet, control = SilentAfterOne(), SilentAfterOne()
    quiet_engine = make_engine(quiet, idle_timeout_s=0.05)
    listening = quiet_engine.submit(InferenceRequest({"microphone": ""}))
    await listening.__anext__()
    # a request started after it, with the same timeout, timing out: the microphone's
    # deadline (had it one) has passed as well
    timed_out = await collect(make_engine(control, idle_timeout_s=0.05).submit(text_request()))
    assert timed_out[-1].error is not None and timed_out[-1].error.code == "E103"
    quiet.speak.set()
    terminal = await asyncio.wait_for(listening.result(), WAIT_S)
    assert terminal.ok and terminal.text == "ab"


# -- a worker that ignores cancellation ------------------------------------------------------


class IgnoresToken(BlockingRunner):
    """Emits once, then blocks until released, deaf to its token (a hung native call)."""

    name = "ignores-token"
    capabilities = frozenset({Capability.LLM})

    def __init__(self) -> None:
        self.release = threading.Event()
        self.threads: list[threading.Thread] = []

    def generate(self, request: InferenceRequest, token: CancelToken, emit: Emit) -> None:
        self.threads.append(threading.current_thread())
        emit(partial("a"))
        self.release.wait(WAIT_S * 3)
        emit(InferenceResult.success({"text": "a"}, {"finish_reason": "stop"}))


async def test_a_hung_worker_ends_its_request_at_once_and_a_second_one_is_logged(caplog):
    runner = IgnoresToken()
    engine = make_engine(runner, cancel_grace_s=0.01)
    try:
        for _ in range(2):
            handle = engine.submit(text_request())
            assert (await asyncio.wait_for(handle.__anext__(), WAIT_S)).text == "a"
            handle.cancel()
            terminal = await asyncio.wait_for(handle.result(), WAIT_S)
            assert terminal.ok and terminal.metadata["finish_reason"] == "cancelled"
            assert terminal.text == "a"
        assert len(stragglers(runner.name)) == 2  # nothing can stop them...
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING
                    and "still run after their request ended" in r.getMessage()]
        assert len(warnings) == 1, "the second worker beside a hung one was not logged"
        assert runner.threads[0].name in warnings[0].getMessage()
    finally:
        runner.release.set()
    for thread in runner.threads:  # ...but they end once their backend returns
        await asyncio.to_thread(thread.join, WAIT_S)
    assert stragglers(runner.name) == []


async def test_the_idle_timeout_also_ends_a_request_whose_worker_is_hung():
    runner = IgnoresToken()
    try:
        results = await collect(make_engine(runner, idle_timeout_s=0.05).submit(text_request()))
        assert results[-1].error is not None and results[-1].error.code == "E103"
    finally:
        runner.release.set()
    await asyncio.to_thread(runner.threads[0].join, WAIT_S)


# -- a consumer that walks away --------------------------------------------------------------


class AudioFlood(BlockingRunner):
    """Emits audio chunks (never coalesced) until emit refuses one; records how it ended."""

    name = "audio-flood"
    capabilities = frozenset({Capability.TTS})
    queue_size = 2

    def __init__(self) -> None:
        self.returned = threading.Event()
        self.was_cancelled = False

    def generate(self, request: InferenceRequest, token: CancelToken, emit: Emit) -> None:
        try:
            for i in range(100_000):
                if not emit(InferenceResult.success({"audio": b"x"}, {"i": i}, partial=True)):
                    break
            self.was_cancelled = token.cancelled
            emit(InferenceResult.success({}, {"finish_reason": "cancelled"}))
        finally:
            self.returned.set()


def tts_request() -> InferenceRequest:
    return InferenceRequest({"text": "speak"}, capability=Capability.TTS)


async def test_breaking_out_of_async_for_releases_the_worker():
    runner = AudioFlood()
    engine = make_engine(runner, queue_size=2)
    async for _ in engine.submit(tts_request()):
        break
    gc.collect()  # not needed on CPython (reference counting), harmless elsewhere
    assert await wait_event(runner.returned), "the worker is still blocked"
    assert runner.was_cancelled


async def test_aclose_releases_the_worker():
    runner = AudioFlood()
    handle = make_engine(runner, queue_size=2).submit(tts_request())
    await handle.__anext__()
    await handle.aclose()
    assert await wait_event(runner.returned), "the worker is still blocked"
    terminal = await asyncio.wait_for(handle.result(), WAIT_S)
    assert terminal.metadata["finish_reason"] == "cancelled"
