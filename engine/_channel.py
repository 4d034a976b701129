"""A bounded result channel from any thread (or the event loop) to one async consumer.

Backpressure: a cumulative text partial arriving while the previous one is still unread
replaces it (latest wins, deltas concatenated), so a slow consumer never makes memory grow;
everything else (audio, final segments, the terminal result) is queued in order, and a
producer thread blocks while `maxsize` items wait. Nothing is ever dropped except after
cancellation, when what is queued is no longer wanted.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque

from .cancel import CancelToken
from .types import InferenceResult

__all__ = ["ChannelClosed", "ResultChannel", "on_loop"]


class ChannelClosed(Exception):
    """The producer closed the channel and every result was read."""


class ResultChannel:
    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int = 64) -> None:
        self._loop = loop
        self._maxsize = max(1, maxsize)
        self._items: deque[InferenceResult] = deque()
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)
        self._ready = asyncio.Event()
        self._space_async = asyncio.Event()
        self._closed = False
        # The consumer found the queue empty and awaits `_ready`. Only then does a producer
        # thread wake the loop: a consumer still busy with the last result reads the next
        # when it comes back, so waking its loop (a system call, a switch of threads, on a
        # machine whose cores the model keeps busy) is saved.
        self._consumer_waits = False

    def __len__(self) -> int:
        return len(self._items)

    # -- producer side ---------------------------------------------------------------------

    def put(self, result: InferenceResult, token: CancelToken | None = None) -> bool:
        """Put from a worker thread, blocking while full. False when closed or cancelled."""
        with self._lock:
            while True:
                if self._closed:
                    return False
                if self._try_add(result):
                    wake, self._consumer_waits = self._consumer_waits, False
                    break
                if token is not None and token.cancelled:
                    return False
                self._space.wait(0.05)
        if wake:
            self._wake(self._ready)
        return True

    async def aput(self, result: InferenceResult, token: CancelToken | None = None) -> bool:
        """Put from a coroutine on the consumer's loop, awaiting while full."""
        while True:
            with self._lock:
                if self._closed:
                    return False
                if self._try_add(result):
                    self._ready.set()
                    return True
                self._space_async.clear()
            if token is not None and token.cancelled:
                return False
            await self._space_async.wait()

    def _try_add(self, result: InferenceResult) -> bool:
        items = self._items
        if items and result.coalescible and items[-1].coalescible:
            items[-1] = items[-1].merged_with(result)
            return True
        if len(items) >= self._maxsize and result.partial:
            return False
        items.append(result)  # a terminal result is always accepted
        return True

    def push_terminal(self, result: InferenceResult) -> None:
        """Queue the terminal result from the loop thread; never waits."""
        with self._lock:
            if self._closed:
                return
            self._items.append(result)
        self._ready.set()

    def close(self) -> None:
        """No more results; wakes the consumer (from any thread)."""
        with self._lock:
            self._closed = True
            self._space.notify_all()
        self._wake(self._ready)
        self._wake(self._space_async)

    def _wake(self, event: asyncio.Event) -> None:
        if on_loop(self._loop):
            event.set()
            return
        try:
            self._loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # the loop is closed: nobody is left to read
            pass

    def discard_partials(self) -> None:
        """Drop queued partial results (after cancellation: queued audio must not play)."""
        with self._lock:
            kept = [r for r in self._items if not r.partial]
            self._items.clear()
            self._items.extend(kept)
            self._space.notify_all()
        self._space_async.set()

    # -- consumer side ---------------------------------------------------------------------

    async def get(self) -> InferenceResult:
        while True:
            with self._lock:
                if self._items:
                    result = self._items.popleft()
                    self._space.notify()
                    self._space_async.set()
                    return result
                if self._closed:
                    raise ChannelClosed
                self._ready.clear()
                self._consumer_waits = True
            await self._ready.wait()

    def absorb_pending(self, result: InferenceResult) -> InferenceResult:
        """Merge the coalescible partials waiting at the head of the queue into `result`."""
        with self._lock:
            while self._items and self._items[0].coalescible and result.coalescible:
                result = result.merged_with(self._items.popleft())
            self._space.notify()
        self._space_async.set()
        return result


def on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
