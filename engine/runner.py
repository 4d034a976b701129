"""The runner protocol: what every backend module in `runners/` implements."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .bridge import Emit, iterate_blocking
from .cancel import CancelToken
from .params import ParamSchema
from .types import Capability, InferenceRequest, InferenceResult

__all__ = ["BlockingRunner", "Runner", "RunnerInfo", "Support"]


@dataclass(frozen=True, slots=True)
class Support:
    """Whether a runner can work on this machine, and if not, why and how to fix it."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True, slots=True)
class RunnerInfo:
    name: str
    capabilities: tuple[str, ...]
    priority: int
    streaming: bool
    available: bool
    reason: str = ""
    model: str | None = None
    params: list[dict[str, Any]] = field(default_factory=list)
    continues_replies: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "capabilities": list(self.capabilities),
            "priority": self.priority,
            "streaming": self.streaming,
            "available": self.available,
            "reason": self.reason or None,
            "model": self.model,
            "continues_replies": self.continues_replies,
        }


class Runner:
    """A backend for one or more capabilities.

    Subclasses set `name`, `capabilities`, `priority` and override `stream` (streaming
    backends) or `run` (one-shot backends; set `streaming = False`). `load` and `unload` are
    blocking and run in a worker thread; `load` is called before every request with its
    validated params and must be cheap when the right model is already loaded.
    """

    name: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    priority: ClassVar[int] = 50
    streaming: ClassVar[bool] = True
    # An LLM runner that takes messages ending in an assistant's unfinished reply and
    # writes on from its last word (a stopped reply can be continued, not only asked again).
    continues_replies: ClassVar[bool] = False

    def is_supported(self) -> Support:
        return Support(True)

    def param_schema(self) -> ParamSchema:
        return ParamSchema(())

    def load(self, params: Mapping[str, Any]) -> None:
        """Make the backend ready for a request with these params (blocking)."""

    def is_loaded(self, params: Mapping[str, Any]) -> bool:
        """Whether `load(params)` would have nothing to do; quick, never blocking. When True
        the engine skips `load`, and with it a trip through a worker thread, which a runner
        asked every few words (the guardian, checking a reply as it streams) would feel.
        False unless the runner knows."""
        return False

    def unload(self) -> None:
        """Release models and devices (blocking)."""

    @property
    def model_name(self) -> str | None:
        return None

    async def stream(
        self, request: InferenceRequest, token: CancelToken
    ) -> AsyncIterator[InferenceResult]:
        """Partial results, then exactly one terminal result. Default: `run` as one result."""
        yield await self.run(request, token)

    async def run(self, request: InferenceRequest, token: CancelToken) -> InferenceResult:
        """The terminal result only. Default: drain `stream`."""
        last = InferenceResult.success()
        async for result in self.stream(request, token):
            last = result
            if not result.partial:
                break
        return last

    def info(self) -> RunnerInfo:
        support = self.is_supported()
        return RunnerInfo(
            name=self.name,
            capabilities=tuple(sorted(c.value for c in self.capabilities)),
            priority=self.priority,
            streaming=self.streaming,
            available=support.ok,
            reason=support.reason,
            model=self.model_name,
            params=self.param_schema().to_list(),
            continues_replies=self.continues_replies,
        )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        overrides = [a for a in ("stream", "run") if getattr(cls, a) is not getattr(Runner, a)]
        if not overrides and not cls.__dict__.get("__abstract_runner__", False):
            raise TypeError(f"runner {cls.__name__} must override stream(), run() or generate()")


class BlockingRunner(Runner):
    """A runner whose backend is a blocking library: it implements `generate`, which runs in
    a worker thread, emits results through `emit`, and checks `token` between units of work.
    """

    __abstract_runner__ = True
    queue_size: ClassVar[int] = 64

    def generate(self, request: InferenceRequest, token: CancelToken, emit: Emit) -> None:
        raise NotImplementedError

    async def stream(
        self, request: InferenceRequest, token: CancelToken
    ) -> AsyncIterator[InferenceResult]:
        # The worker gets a token of its own: ending this stream stops the worker without
        # marking the request cancelled (an error result may still be retried).
        worker_token = token.child()
        results = iterate_blocking(
            lambda emit: self.generate(request, worker_token, emit),
            worker_token,
            name=f"breeze-{self.name}-{request.request_id}",
            maxsize=self.queue_size,
            group=self.name,
        )
        async with aclosing(results):
            async for result in results:
                yield result


class Stopwatch:
    """Milliseconds since creation; the first-output time is remembered once."""

    __slots__ = ("start", "first_ms")

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.first_ms: float | None = None

    def ms(self) -> float:
        return round((time.perf_counter() - self.start) * 1000.0, 3)

    def mark_first(self) -> float:
        if self.first_ms is None:
            self.first_ms = self.ms()
        return self.first_ms
