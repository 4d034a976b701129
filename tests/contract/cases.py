"""Runners that join the contract suite. A runner joins by adding one ContractCase to CASES."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine import Capability, InferenceRequest, Runner

from .scripted import FailingMidStream, HangingRunner, ScriptedLLM


@dataclass(frozen=True)
class ContractCase:
    id: str
    make_runner: Callable[[], Runner]
    capability: Capability
    request: Callable[[], InferenceRequest]  # streams several results
    long_request: Callable[[], InferenceRequest]  # still running when cancelled
    bad_request: Callable[[], InferenceRequest]  # must end in an error result
    work_done: Callable[[Runner], int] | None = None  # backend work so far (tokens, chunks)
    fails_mid_stream: bool = False  # the streaming request itself ends in an error
    hangs: bool = False  # the streaming request only ends when cancelled
    cycles: int = 200  # submit/cancel cycles of the leak test


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



def _llama_runner() -> Runner:
    from runners.llama_cpp import LlamaCppRunner

    return LlamaCppRunner()


def _llama_kv_tokens(runner: Runner) -> int:
    """Tokens in the model's KV cache: grows with every token decoded."""
    llm = runner._llm  # type: ignore[attr-defined]
    return 0 if llm is None else int(llm.n_tokens)


def _chat(text: str, **params: object) -> Callable[[], InferenceRequest]:
    return lambda: InferenceRequest({"text": text}, {"temperature": 0.0, **params})


CASES.append(
    ContractCase(
        id="llama_cpp-smollm2",
        make_runner=_llama_runner,
        capability=Capability.LLM,
        request=_chat("Name three colours.", max_tokens=24),
        long_request=_chat("Write a long story about a dragon.", max_tokens=4000),
        bad_request=_chat("hi", top_k="many"),
        work_done=_llama_kv_tokens,
    )
)
