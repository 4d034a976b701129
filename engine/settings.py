"""Engine settings: one object instead of many keyword arguments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .retry import RetryPolicy
from .types import Capability

if TYPE_CHECKING:
    from .guard import Guard

__all__ = ["EngineSettings"]


@dataclass(slots=True)
class EngineSettings:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # Results waiting for a slow consumer; cumulative text partials coalesce beyond this.
    queue_size: int = 64
    # Minimum spacing of cumulative text partials to the consumer; the first goes at once.
    emit_interval_ms: float = 15.0
    # After cancel(), how long a runner may take to end by itself before its task is cancelled.
    cancel_grace_s: float = 1.0
    # A runner that yields nothing for this long ends its request with E103 and is cancelled;
    # None: no limit. Live microphone streams are exempt (silence is no hang).
    idle_timeout_s: float | None = 300.0
    # The user's runner of choice per capability (tried before priority order).
    preferred_runners: dict[Capability, str] = field(default_factory=dict)
    # The user's default parameters per runner name (a request's own params win).
    runner_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Safety checks around LLM and VLM turns (engine/guard.py); None: no checks.
    guard: Guard | None = None
