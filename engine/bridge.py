"""The bridge for blocking backends: a worker thread feeds an async iterator.

Like starlette's `iterate_in_threadpool`, but streaming: the backend function runs in its
own thread and calls `emit(result)` for each result; the consumer iterates asynchronously.
The queue is bounded and coalesces cumulative text partials (see `_channel`), which are read
no more often than the engine paces them (`Pacing`). When the
stream ends while the worker still runs (closed, cancelled, or ended by an error result),
the token is cancelled and `emit` returns False; the backend checks either between units of
work. The thread is never waited on.

Python cannot stop a thread from outside: a backend that ignores the token, or is stuck in
a native call, runs on after its stream has ended. Such stragglers are kept per group (a
runner), and a worker started while one of its group still runs is logged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import AsyncGenerator, Callable
from contextvars import ContextVar
from dataclasses import dataclass

from ._channel import ChannelClosed, ResultChannel
from .cancel import Cancelled, CancelToken
from .errors import BreezeError, RunnerError
from .types import InferenceResult

__all__ = ["Emit", "Pacing", "iterate_blocking", "pacing", "stragglers"]

log = logging.getLogger("breeze.bridge")


@dataclass(slots=True)
class Pacing:
    """How often the bridge reads cumulative partials for the request the engine drives in
    this context (`pacing`): no more often than every `interval_s` once the consumer has
    been shown something, so the partials emitted in between merge in the channel, and the
    worker does not wake the event loop for each. Until then they go through at once: the
    first text must not wait (a guard may need a second partial before it shows a word)."""

    interval_s: float = 0.0
    showing: bool = False  # the consumer has been shown an output

    def next_read(self, now: float, result: InferenceResult) -> float:
        """When to read again after `result`, read at `now` (loop time)."""
        return now + self.interval_s if self.showing and result.coalescible else 0.0


pacing: ContextVar[Pacing | None] = ContextVar("breeze_pacing", default=None)

Emit = Callable[[InferenceResult], bool]
BlockingStream = Callable[[Emit], None]


async def iterate_blocking(
    backend: BlockingStream,
    token: CancelToken,
    *,
    name: str = "breeze-worker",
    maxsize: int = 64,
    group: str | None = None,
) -> AsyncGenerator[InferenceResult, None]:
    """Run `backend(emit)` in a thread; yield what it emits up to and including a terminal.

    `emit` returns False once the stream has ended (the consumer is gone, the request was
    cancelled, or a terminal was emitted), so the backend can stop. A result with an error
    is terminal even when marked partial. An exception in the backend becomes a terminal
    error result; a backend that returns without a terminal result gets one (E102).
    """
    channel = ResultChannel(asyncio.get_running_loop(), maxsize)
    group = group or name
    state: dict[str, float | bool] = {"terminal": False, "returned": False, "ended_at": 0.0,
                                      "finished": False}

    def emit(result: InferenceResult) -> bool:
        if state["terminal"]:
            return False
        if result.error is not None or not result.partial:
            state["terminal"] = True
            # its own last result: the backend is returning, not running on
            state["finished"] = not result.partial
            accepted = channel.put(dataclasses.replace(result, partial=False))
            return accepted and not result.partial
        if token.cancelled:
            return False
        return channel.put(result, token)

    def work() -> None:
        try:
            backend(emit)
            emit(_failure("E102", "the backend ended without a final result"))
        except Cancelled:
            if token.cancelled:
                emit(InferenceResult.success(metadata={"finish_reason": "cancelled"}))
            else:
                emit(_failure("E101", "the backend stopped as cancelled; nobody cancelled it"))
        except BreezeError as exc:
            emit(InferenceResult.failure(exc.error))
        except BaseException as exc:  # in a thread even SystemExit would end it silently
            log.exception("backend %s failed", name)
            emit(_failure("E101", f"{type(exc).__name__}: {exc}"))
        finally:
            state["returned"] = True
            channel.close()
            if state["ended_at"]:
                late = time.monotonic() - float(state["ended_at"])
                level = logging.INFO if late >= 1.0 else logging.DEBUG
                log.log(level, "worker %s returned %.1f s after its stream ended", name, late)

    thread = threading.Thread(target=work, name=name, daemon=True)
    running = _stragglers.running(group)
    if running:
        log.warning(
            "%s starts while %d earlier worker(s) of %s still run after their request ended "
            "(not stopped by its cancellation): %s",
            name, len(running), group, ", ".join(t.name for t in running),
        )
    loop = asyncio.get_running_loop()
    paced = pacing.get() or Pacing()
    thread.start()
    try:
        read_at = 0.0  # loop time
        while True:
            if read_at > loop.time():
                await asyncio.sleep(read_at - loop.time())
            try:
                result = await channel.get()
            except ChannelClosed:
                return
            read = loop.time()
            yield result
            if not result.partial:
                return
            read_at = paced.next_read(read, result)  # once the consumer has had it
    finally:
        if not state["returned"]:
            state["ended_at"] = time.monotonic()
            token.cancel("the stream has ended")
            channel.close()
            if not state["finished"]:
                _stragglers.add(group, thread)


def stragglers(group: str) -> list[threading.Thread]:
    """Worker threads of `group` still running after their stream ended."""
    return _stragglers.running(group)


class _Stragglers:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: dict[str, list[threading.Thread]] = {}

    def add(self, group: str, thread: threading.Thread) -> None:
        with self._lock:
            self._threads.setdefault(group, []).append(thread)

    def running(self, group: str) -> list[threading.Thread]:
        with self._lock:
            alive = [t for t in self._threads.pop(group, ()) if t.is_alive()]
            if alive:
                self._threads[group] = alive
        return alive


_stragglers = _Stragglers()


def _failure(code: str, message: str) -> InferenceResult:
    return InferenceResult.failure(RunnerError.of(code, message))
