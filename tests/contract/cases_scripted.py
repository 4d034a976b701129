"""Scripted in-memory runners in the contract suite (the engine's own tests)."""

from __future__ import annotations

from collections.abc import Callable

from breeze.engine import Capability, InferenceRequest

from .cases import ContractCase
from .scripted import FailingMidStream, HangingRunner, ScriptedLLM


def _text(max_tokens: int, **params: object) -> Callable[[], InferenceRequest]:
    return lambda: InferenceRequest({"text": "hello"}, {"max_tokens": max_tokens, **params})


CASES: list[ContractCase] = [
    ContractCase(
        id="scripted-llm",
        make_runner=lambda: ScriptedLLM(delay_s=0.002),
        capability=Capability.LLM,
        request=_text(12),
        long_request=_text(100_000),
        bad_request=_text(-1),
        work_done=lambda r: r.work_units,  # type: ignore[attr-defined]
    ),
    ContractCase(
        id="scripted-fast-emitter",
        make_runner=lambda: ScriptedLLM(delay_s=0.0),
        capability=Capability.LLM,
        request=_text(5_000),
        long_request=_text(1_000_000),
        bad_request=lambda: InferenceRequest({"text": "hi"}, {"temperature": "hot"}),
        work_done=lambda r: r.work_units,  # type: ignore[attr-defined]
    ),
    ContractCase(
        id="scripted-raises-mid-stream",
        make_runner=FailingMidStream,
        capability=Capability.LLM,
        request=_text(5),
        long_request=_text(5),
        bad_request=_text(5),
        fails_mid_stream=True,
    ),
    ContractCase(
        id="scripted-hangs-until-cancelled",
        make_runner=HangingRunner,
        capability=Capability.LLM,
        request=lambda: InferenceRequest({"text": "hi"}),
        long_request=lambda: InferenceRequest({"text": "hi"}),
        bad_request=lambda: InferenceRequest({"text": 42}),
        hangs=True,
    ),
]
