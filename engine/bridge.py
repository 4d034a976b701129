"""The bridge for blocking backends: a worker thread feeds an async iterator.

Like starlette's `iterate_in_threadpool`, but streaming: the backend function runs in its
own thread and calls `emit(result)` for each result; the consumer iterates asynchronously.
The queue is bounded and coalesces cumulative text partials (see `_channel`). Closing or
cancelling the iterator sets the cancellation token, which the backend checks between units
of work; the thread is never waited on without a bound.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable

from ._channel import ChannelClosed, ResultChannel
from .cancel import Cancelled, CancelToken
from .errors import BreezeError, RunnerError
from .types import InferenceResult

__all__ = ["Emit", "iterate_blocking"]

log = logging.getLogger("breeze.bridge")

Emit = Callable[[InferenceResult], bool]
BlockingStream = Callable[[Emit], None]


async def iterate_blocking(
    backend: BlockingStream,
    token: CancelToken,
    *,
    name: str = "breeze-worker",
    maxsize: int = 64,
) -> AsyncIterator[InferenceResult]:
    """Run `backend(emit)` in a thread; yield what it emits up to and including a terminal.

    `emit` returns False once the consumer is gone or the request was cancelled, so the
    backend can stop. An exception in the backend becomes a terminal error result; a backend
    that returns without a terminal result gets one (E102) so the contract always holds.
    """
    channel = ResultChannel(asyncio.get_running_loop(), maxsize)
    state = {"terminal": False}

    def emit(result: InferenceResult) -> bool:
        if state["terminal"]:
            return False
        if not result.partial:
            state["terminal"] = True
            return channel.put(result)
        if token.cancelled:
            return False
        return channel.put(result, token)

    def work() -> None:
        try:
            backend(emit)
            if not state["terminal"]:
                emit(_failure("E102", "the backend ended without a final result"))
        except Cancelled:
            if not state["terminal"]:
                emit(InferenceResult.success(metadata={"finish_reason": "cancelled"}))
        except BreezeError as exc:
            emit(InferenceResult.failure(exc.error))
        except Exception as exc:  # a backend bug must reach the consumer as a result
            log.exception("backend %s failed", name)
            emit(_failure("E101", f"{type(exc).__name__}: {exc}"))
        finally:
            channel.close()

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    try:
        while True:
            try:
                result = await channel.get()
            except ChannelClosed:
                return
            yield result
            if not result.partial:
                return
    finally:
        if not state["terminal"]:
            token.cancel("consumer closed the stream")
            channel.discard_partials()


def _failure(code: str, message: str) -> InferenceResult:
    return InferenceResult.failure(RunnerError.of(code, message))
