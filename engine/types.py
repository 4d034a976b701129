"""Requests, results and capabilities: every event type that flows through the engine."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import BreezeError, RunnerError

__all__ = ["Capability", "InferenceRequest", "InferenceResult", "new_request_id"]


class Capability(enum.StrEnum):
    LLM = "LLM"
    ASR = "ASR"
    TTS = "TTS"
    VLM = "VLM"
    GUARDIAN = "GUARDIAN"

    @classmethod
    def parse(cls, value: str | Capability) -> Capability:
        try:
            return cls(value.upper() if isinstance(value, str) else value)
        except ValueError:
            names = ", ".join(c.value for c in cls)
            raise BreezeError("E405", f"unknown capability {value!r} (known: {names})") from None


def new_request_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True, slots=True)
class InferenceRequest:
    """One unit of work. `inputs`: text, audio (PCM16 bytes), image, messages."""

    inputs: Mapping[str, Any]
    params: Mapping[str, Any] = field(default_factory=dict)
    session_id: str | None = None
    request_id: str = field(default_factory=new_request_id)
    capability: Capability | None = None

    INPUT_TEXT = "text"
    INPUT_AUDIO = "audio"
    INPUT_IMAGE = "image"
    INPUT_MESSAGES = "messages"

    def with_params(self, **params: Any) -> InferenceRequest:
        return replace(self, params={**self.params, **params})


@dataclass(frozen=True, slots=True)
class InferenceResult:
    """A partial or terminal result. Exactly one terminal (partial=False) ends a stream."""

    outputs: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    error: RunnerError | None = None
    partial: bool = False

    OUTPUT_TEXT = "text"
    OUTPUT_DELTA = "delta"
    OUTPUT_AUDIO = "audio"

    @classmethod
    def success(
        cls,
        outputs: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        partial: bool = False,
    ) -> InferenceResult:
        return cls(dict(outputs or {}), dict(metadata or {}), None, partial)

    @classmethod
    def failure(
        cls,
        error: RunnerError,
        outputs: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> InferenceResult:
        """A terminal error result (the seed's `error(...)`; `error` is the field's name here).

        Outputs keep what was produced before the failure."""
        return cls(dict(outputs or {}), dict(metadata or {}), error, False)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        return str(self.outputs.get("text", ""))

    @property
    def is_terminal(self) -> bool:
        return not self.partial

    def with_metadata(self, **metadata: Any) -> InferenceResult:
        return replace(self, metadata={**self.metadata, **metadata})

    def with_outputs(self, **outputs: Any) -> InferenceResult:
        return replace(self, outputs={**self.outputs, **outputs})

    @property
    def coalescible(self) -> bool:
        """A cumulative partial a newer one may replace (never audio, never a final segment)."""
        return (
            self.partial
            and "audio" not in self.outputs
            and not self.metadata.get("is_final", False)
            and not self.metadata.get("no_coalesce", False)
        )

    def merged_with(self, newer: InferenceResult) -> InferenceResult:
        """Coalesce two cumulative partials: latest wins, deltas are concatenated."""
        outputs = {**self.outputs, **newer.outputs}
        old_delta, new_delta = self.outputs.get("delta"), newer.outputs.get("delta")
        if isinstance(old_delta, str) and isinstance(new_delta, str):
            outputs["delta"] = old_delta + new_delta
        metadata = {**self.metadata, **newer.metadata}
        merged = int(self.metadata.get("coalesced", 1)) + int(newer.metadata.get("coalesced", 1))
        metadata["coalesced"] = merged
        return InferenceResult(outputs, metadata, None, True)
