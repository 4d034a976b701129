"""The Engine: submit a request, get a handle that streams results and can be cancelled."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import weakref
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from ._channel import ChannelClosed, ResultChannel, on_loop
from .bridge import Pacing, pacing
from .cancel import Cancelled, CancelToken
from .errors import BreezeError, RunnerError
from .guard import GUARDED_CAPABILITIES
from .registry import Registry, RunnerEntry
from .retry import aclose, stream_with_retry
from .routing import route
from .runner import Runner, RunnerInfo, Stopwatch
from .settings import EngineSettings
from .types import Capability, InferenceRequest, InferenceResult

__all__ = ["Engine", "Handle"]

log = logging.getLogger("breeze.engine")

# A shorter wait to space partials is not worth a timer of its own: what a blocking runner
# sends is spaced already by the bridge, give or take the time it took to get here.
_SHORTEST_PACING_WAIT_S = 0.001
# Load failures after which the next candidate runner is tried.
_FALLBACK_CODES = frozenset({"E404", "E500", "E501", "E502", "E503", "E504"})


class Handle:
    """An async iterator over one request's results, ending with exactly one terminal result.

    `cancel()` is safe from any task or thread and returns at once; the stream then ends with
    a terminal result whose metadata has finish_reason "cancelled" and the output so far.
    Leaving it unfinished cancels it too: `aclose()`, leaving `async with`, or dropping the
    last reference to it.
    """

    def __init__(self, engine: Engine, request: InferenceRequest, runner: str | None) -> None:
        loop = asyncio.get_running_loop()
        settings = engine.settings
        self.request = request
        self.request_id = request.request_id
        self.token = CancelToken()
        self.terminal: InferenceResult | None = None
        self._channel = ResultChannel(loop, settings.queue_size)
        self._interval = settings.emit_interval_ms / 1000.0
        self._last_emit: float | None = None
        self._watch = Stopwatch()
        # request-level metadata every delivered result carries (runner_name once chosen)
        self._extra: dict[str, Any] = {"request_id": request.request_id}
        task = loop.create_task(
            engine._drive(request, runner, self.token, self._channel, self._extra)
        )
        engine._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(engine._tasks.discard)
        self._control = _Control(loop, self.token, self._channel, task, settings.cancel_grace_s)
        # A handle dropped before its end (a `break` out of `async for` over `submit(...)`)
        # cancels its request, so that no worker stays blocked on a consumer that is gone.
        self._finalizer = weakref.finalize(self, self._control.cancel, "the consumer dropped it")
        self._finalizer.atexit = False

    def cancel(self, reason: str = "cancelled by the user") -> None:
        self._control.cancel(reason)

    async def aclose(self) -> None:
        """Stop reading: the request is cancelled unless it has ended."""
        if self.terminal is None:
            self.cancel("the consumer closed the stream")

    @property
    def done(self) -> bool:
        return self.terminal is not None

    def __aiter__(self) -> Handle:
        return self

    async def __anext__(self) -> InferenceResult:
        if self.terminal is not None:
            raise StopAsyncIteration
        try:
            result = await self._channel.get()
        except ChannelClosed:  # only if the drive task was torn down with the loop
            raise StopAsyncIteration from None
        if result.coalescible and self._interval:
            result = await self._pace(result)
        result = self._annotate(result)
        if not result.partial:
            self.terminal = result
            self._finalizer.detach()
        return result

    def _annotate(self, result: InferenceResult) -> InferenceResult:
        """Done on delivery, not per runner result: merged partials are annotated once."""
        return _annotated(result, self._extra, self._watch)

    async def _pace(self, result: InferenceResult) -> InferenceResult:
        """Space cumulative partials `emit_interval_ms` apart, merging what arrives meanwhile."""
        now = time.perf_counter()
        if self._last_emit is not None:
            wait = self._last_emit + self._interval - now
            if wait >= _SHORTEST_PACING_WAIT_S:
                await asyncio.sleep(wait)
                result = self._channel.absorb_pending(result)
        self._last_emit = time.perf_counter()
        return result

    async def result(self) -> InferenceResult:
        """Drain the stream; the terminal result."""
        async for _ in self:
            pass
        assert self.terminal is not None
        return self.terminal

    async def __aenter__(self) -> Handle:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.terminal is None:
            self.cancel("the consumer left")


class _Control:
    """The one way a request is cancelled: the token at once (backends stop between units
    of work, queued partials are dropped), the driving task after a grace period. Apart
    from the handle, so that the handle's finalizer can use it."""

    __slots__ = ("loop", "token", "channel", "task", "grace")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        token: CancelToken,
        channel: ResultChannel,
        task: asyncio.Task[None],
        grace: float,
    ) -> None:
        self.loop, self.token, self.channel, self.task, self.grace = (
            loop, token, channel, task, grace
        )

    def cancel(self, reason: str) -> None:
        if self.token.cancelled or self.task.done():
            return
        self.token.cancel(reason)
        if on_loop(self.loop):
            self._after_cancel()
            return
        try:
            self.loop.call_soon_threadsafe(self._after_cancel)
        except RuntimeError:  # the loop is closed: nothing runs any more
            pass

    def _after_cancel(self) -> None:
        self.channel.discard_partials()
        self.loop.call_later(self.grace, self.task.cancel)


class Engine:
    """Routes requests to runners and enforces the streaming contract around them."""

    def __init__(self, registry: Registry, settings: EngineSettings | None = None) -> None:
        self.registry = registry
        self.settings = settings or EngineSettings()
        self._load_locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, request: InferenceRequest, *, runner: str | None = None) -> Handle:
        """Start `request` now; iterate the handle for its results. Never raises for bad
        input: that arrives as an error result."""
        return Handle(self, request, runner)

    async def run(self, request: InferenceRequest, *, runner: str | None = None) -> InferenceResult:
        return await self.submit(request, runner=runner).result()

    async def run_here(
        self, request: InferenceRequest, *, runner: str | None = None
    ) -> InferenceResult:
        """The terminal result of `request`, worked out in the calling task: no handle, queue
        or task of its own, so that a short request made often (the guardian's check of every
        few words of a reply) costs little. Partial results are not kept; cancelling the
        calling task cancels the request."""
        extra: dict[str, Any] = {"request_id": request.request_id}
        outcome = _Outcome()
        await self._drive(request, runner, CancelToken(), outcome, extra)
        assert outcome.terminal is not None  # _drive always finishes with one
        return _annotated(outcome.terminal, extra, outcome.watch)

    def first_runner(self, capability: Capability, runner: str | None = None) -> RunnerInfo:
        """What a request for `capability` goes to first: `runner` when named, else the
        preferred one, else the highest priority. BreezeError E405 when nothing can serve."""
        return self.registry.candidates(
            capability, runner, self.settings.preferred_runners
        )[0].runner.info()

    async def preload(
        self,
        capability: Capability = Capability.LLM,
        *,
        runner: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Load the runner a request for `capability` would use, ahead of the first request.

        Returns what would serve it: {"runner_name", "model_name"} (plus fallback details);
        raises BreezeError when nothing can load."""
        probe = InferenceRequest({}, dict(params or {}), capability=capability)
        extra: dict[str, Any] = {}
        chosen, _ = await self._prepare(probe, runner, extra, CancelToken())
        return {**extra, "model_name": chosen.model_name}

    async def aclose(self) -> None:
        for entry in self.registry.entries():
            if entry.instantiated:
                await asyncio.to_thread(entry.runner.unload)

    # -- the pipeline ----------------------------------------------------------------------

    async def _drive(
        self,
        request: InferenceRequest,
        runner_name: str | None,
        token: CancelToken,
        channel: _ResultSink,
        extra: dict[str, Any],
    ) -> None:
        paced = Pacing(self.settings.emit_interval_ms / 1000.0)
        previous = pacing.set(paced)
        try:
            await self._run_pipeline(request, runner_name, token, channel, extra, paced)
        finally:
            pacing.reset(previous)

    async def _run_pipeline(
        self,
        request: InferenceRequest,
        runner_name: str | None,
        token: CancelToken,
        channel: _ResultSink,
        extra: dict[str, Any],
        paced: Pacing,
    ) -> None:
        last_outputs: Mapping[str, Any] = {}
        terminal: InferenceResult | None = None

        def finish(result: InferenceResult) -> None:
            nonlocal terminal
            if terminal is None:
                if token.cancelled and result.ok and "finish_reason" not in result.metadata:
                    result = result.with_metadata(finish_reason="cancelled")
                if last_outputs and not result.outputs:  # keep what the consumer already saw
                    kept = {k: v for k, v in last_outputs.items() if k != "delta"}
                    result = result.with_outputs(**kept)
                terminal = result
                channel.push_terminal(terminal)

        try:
            guard = self.settings.guard
            guarded = guard is not None and route(request) in GUARDED_CAPABILITIES
            if guard is not None and guarded:
                verdict = await guard.check_input(self, request)
                extra.update(verdict.metadata)
                if verdict.blocked is not None:
                    finish(verdict.blocked)
                    return
                request = verdict.request or request
            runner, prepared = await self._prepare(request, runner_name, extra, token)
            results: AsyncIterator[InferenceResult] = stream_with_retry(
                lambda: _runner_stream(runner, prepared, token), self.settings.retry, token
            )
            if guard is not None and guarded:
                results = guard.guard_output(self, prepared, results, token)
            idle_s = None if "microphone" in request.inputs else self.settings.idle_timeout_s
            if idle_s:
                results = _idle_limited(results, idle_s, token, runner.name)
            try:
                count = 0
                async for result in results:
                    if result.outputs:
                        last_outputs = result.outputs
                    if not result.partial:
                        finish(result)
                        break
                    if not token.cancelled:
                        await channel.aput(result, token)
                        paced.showing = paced.showing or _shows_something(result)
                    count += 1
                    if count % 64 == 0:  # a runner that never awaits must not starve the consumer
                        await asyncio.sleep(0)
            finally:
                await aclose(results)
            if terminal is None:
                if token.cancelled:
                    finish(InferenceResult.success(last_outputs))
                else:
                    message = f"runner {runner.name!r} ended without a final result"
                    finish(InferenceResult.failure(RunnerError.of("E102", message), last_outputs))
        except BreezeError as exc:
            if token.cancelled:  # what failed was stopped on purpose (a download, say)
                finish(InferenceResult.success(last_outputs, {"finish_reason": "cancelled"}))
            else:
                finish(InferenceResult.failure(exc.error, last_outputs))
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if token.cancelled or (task is not None and task.cancelling()):
                finish(InferenceResult.success(last_outputs, {"finish_reason": "cancelled"}))
                if task is not None and task.cancelling():
                    raise
                return
            # raised by a runner itself: nobody cancelled this request
            log.error("request %s: CancelledError without a cancel", request.request_id)
            error = RunnerError.of("E101", "the runner raised CancelledError; nobody cancelled")
            finish(InferenceResult.failure(error, last_outputs))
        except Exception as exc:
            log.exception("request %s failed", request.request_id)
            error = RunnerError.of("E101", f"{type(exc).__name__}: {exc}")
            finish(InferenceResult.failure(error, last_outputs))
        finally:
            channel.close()

    async def _prepare(
        self,
        request: InferenceRequest,
        runner_name: str | None,
        extra: dict[str, Any],
        token: CancelToken,
    ) -> tuple[Runner, InferenceRequest]:
        """Pick and load a runner (falling back when one cannot load, unless the request was
        cancelled meanwhile: a stopped download is no reason to try another); validate
        params."""
        capability = route(request)
        candidates = self.registry.candidates(
            capability, runner_name, self.settings.preferred_runners
        )
        skipped: list[str] = []
        first_error: BreezeError | None = None
        for entry in candidates:
            try:
                prepared = await self._load(entry, request, capability)
            except BreezeError as exc:
                if exc.error.code not in _FALLBACK_CODES or len(candidates) == 1 \
                        or token.cancelled:
                    raise
                log.warning("runner %s cannot serve: %s", entry.name, exc.error)
                skipped.append(f"{entry.name}: {exc.error}")
                first_error = first_error or exc
                continue
            extra["runner_name"] = entry.name
            if skipped:
                extra["fallback_from"] = [s.split(":", 1)[0] for s in skipped]
                extra["fallback_reason"] = "; ".join(skipped)
            return entry.runner, prepared
        # The first candidate's failure is the one that matters to the user (their runner of
        # choice); the fallbacks' failures follow in the message.
        assert first_error is not None
        others = "; ".join(skipped[1:])
        error = first_error.error
        message = f"{error.message} (no fallback could serve: {others})" if others else \
            error.message
        raise BreezeError(error.code, message, error.recoverable)

    async def _load(
        self, entry: RunnerEntry, request: InferenceRequest, capability: Capability
    ) -> InferenceRequest:
        runner = entry.runner
        support = runner.is_supported()
        if not support:
            raise BreezeError("E501", f"runner {entry.name!r} is unavailable: {support.reason}")
        defaults = self.settings.runner_params.get(entry.name, {})
        params = runner.param_schema().validate({**defaults, **request.params})
        if not runner.is_loaded(params):
            lock = self._load_locks.setdefault(entry.name, asyncio.Lock())
            async with lock:
                await asyncio.to_thread(runner.load, params)
        return InferenceRequest(
            request.inputs, params, request.session_id, request.request_id, capability
        )


async def _runner_stream(
    runner: Runner, request: InferenceRequest, token: CancelToken
) -> AsyncIterator[InferenceResult]:
    """The runner's results held to the contract: an error result is terminal (whatever
    follows is not read, and the runner's stream is closed); exceptions become error
    results."""
    stream: AsyncIterator[InferenceResult] | None = None
    try:
        if runner.streaming:
            stream = runner.stream(request, token)
        else:
            stream = _once(runner, request, token)
        async for result in stream:
            if result.error is not None and result.partial:
                result = dataclasses.replace(result, partial=False)
            yield result
            if not result.partial:
                return
    except BreezeError as exc:
        yield InferenceResult.failure(exc.error)
    except Cancelled:
        if token.cancelled:
            yield InferenceResult.success(metadata={"finish_reason": "cancelled"})
        else:
            error = RunnerError.of("E101", "the runner stopped as cancelled; nobody cancelled it")
            yield InferenceResult.failure(error)
    except (ConnectionError, TimeoutError) as exc:
        yield InferenceResult.failure(RunnerError.of("E102", f"{type(exc).__name__}: {exc}"))
    finally:
        if stream is not None:
            await aclose(stream)


async def _once(
    runner: Runner, request: InferenceRequest, token: CancelToken
) -> AsyncIterator[InferenceResult]:
    yield await runner.run(request, token)


async def _idle_limited(
    results: AsyncIterator[InferenceResult], seconds: float, token: CancelToken, runner: str
) -> AsyncIterator[InferenceResult]:
    """`results`, ended by an E103 error result when none arrives for `seconds`: the wait is
    cancelled (closing the runner's stream, which stops a blocking worker), then the token."""
    try:
        while True:
            timer = asyncio.timeout(seconds)
            try:
                async with timer:
                    result = await anext(results)
            except StopAsyncIteration:
                return
            except TimeoutError:
                if not timer.expired():
                    raise
            if timer.expired():
                token.cancel("timed out")
                message = f"runner {runner!r} sent nothing for {seconds:g} s"
                yield InferenceResult.failure(RunnerError.of("E103", message))
                return
            yield result
    finally:
        await aclose(results)


class _ResultSink(Protocol):
    """Where the pipeline puts a request's results: a handle's queue, or an `_Outcome`."""

    async def aput(self, result: InferenceResult, token: CancelToken | None = None) -> bool: ...

    def push_terminal(self, result: InferenceResult) -> None: ...

    def close(self) -> None: ...


class _Outcome:
    """The terminal result of a request run in its caller's task (`Engine.run_here`), and
    when the first output came; partial results are only looked at."""

    def __init__(self) -> None:
        self.terminal: InferenceResult | None = None
        self.watch = Stopwatch()

    async def aput(self, result: InferenceResult, token: CancelToken | None = None) -> bool:
        if self.watch.first_ms is None and _shows_something(result):
            self.watch.mark_first()
        return True

    def push_terminal(self, result: InferenceResult) -> None:
        self.terminal = result

    def close(self) -> None:
        pass


def _annotated(result: InferenceResult, extra: Mapping[str, Any],
               watch: Stopwatch) -> InferenceResult:
    """`result` with the request-level metadata, how long the request has taken, and when its
    first output came."""
    metadata = {**result.metadata, **extra, "elapsed_ms": watch.ms()}
    if watch.first_ms is None and _shows_something(result):
        watch.mark_first()
    if watch.first_ms is not None:
        # from submit to the first output the consumer got: what the user waited for
        # (a runner's own figure starts later, and may count text a guard held back)
        metadata["ttft_ms"] = round(watch.first_ms, 3)
    return InferenceResult(result.outputs, metadata, result.error, result.partial)


def _shows_something(result: InferenceResult) -> bool:
    """A result with output for the consumer: text (not an empty string), audio, a verdict."""
    return any(value not in ("", None, b"") for value in result.outputs.values())
