"""A cancellation token shared by the engine, its worker threads and the backends."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

__all__ = ["CancelToken", "Cancelled"]


class Cancelled(Exception):  # noqa: N818 - reads as "raise Cancelled"
    """Raised by `CancelToken.check()` inside a backend loop; the runner turns it into a
    terminal result with finish_reason "cancelled"."""


class CancelToken:
    """Set once by `cancel()`; checked by backends between units of work (tokens, chunks)."""

    __slots__ = ("_event", "_callbacks", "_lock", "reason")

    def __init__(self) -> None:
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self.reason = ""

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self, reason: str = "cancelled") -> None:
        with self._lock:
            if self._event.is_set():
                return
            self.reason = reason
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled(self.reason)

    def wait(self, timeout: float | None = None) -> bool:
        """Block a worker thread until cancelled or the timeout passes; True when cancelled."""
        return self._event.wait(timeout)

    def child(self) -> CancelToken:
        """A token cancelled with this one that can also be cancelled alone: one worker of
        the request, stopped when its stream ends without ending the request."""
        child = CancelToken()
        self.on_cancel(lambda: child.cancel(self.reason))
        return child

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from whichever thread cancels) once cancelled; at once if already."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return
        callback()

    async def wait_async(self) -> None:
        """Await cancellation from the event loop."""
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        self.on_cancel(lambda: _call_soon(loop, done.set))
        await done.wait()

    async def sleep(self, seconds: float) -> None:
        """Sleep, returning early when cancelled."""
        if self.cancelled or seconds <= 0:
            return
        waiter = asyncio.ensure_future(self.wait_async())
        try:
            await asyncio.wait({waiter}, timeout=seconds)
        finally:
            waiter.cancel()


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> None:
    try:
        loop.call_soon_threadsafe(callback)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass
