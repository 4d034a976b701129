"""The engine's hook for safety checks around LLM turns (the guardian pipeline plugs in here).

The engine calls `check_input` before a runner is chosen and wraps the runner's results
with `guard_output`; both are given the engine, so a guard can submit GUARDIAN requests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .cancel import CancelToken
from .types import Capability, InferenceRequest, InferenceResult

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["Guard", "GuardVerdict", "GUARDED_CAPABILITIES"]

GUARDED_CAPABILITIES = frozenset({Capability.LLM, Capability.VLM})


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    """`blocked`: a terminal error result (G100) ending the request before any runner works;
    `metadata`: added to every result of the request (warnings, masked spans...)."""

    blocked: InferenceResult | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    request: InferenceRequest | None = None  # the request to run instead (input filtered)


class Guard(Protocol):
    async def check_input(self, engine: Engine, request: InferenceRequest) -> GuardVerdict: ...

    def guard_output(
        self,
        engine: Engine,
        request: InferenceRequest,
        results: AsyncIterator[InferenceResult],
        token: CancelToken,
    ) -> AsyncIterator[InferenceResult]: ...
