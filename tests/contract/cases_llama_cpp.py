"""The llama.cpp runner on the embedded SmolLM2 model joins the contract suite."""

from __future__ import annotations

from collections.abc import Callable

from breeze.engine import Capability, InferenceRequest, Runner

from .cases import ContractCase


def _llama_runner() -> Runner:
    from breeze.runners.llama_cpp import LlamaCppRunner

    return LlamaCppRunner()


def _llama_kv_tokens(runner: Runner) -> int:
    """Tokens in the model's KV cache: grows with every token decoded."""
    llm = runner._llm  # type: ignore[attr-defined]
    return 0 if llm is None else int(llm.n_tokens)


def _chat(text: str, **params: object) -> Callable[[], InferenceRequest]:
    return lambda: InferenceRequest({"text": text}, {"temperature": 0.0, **params})


CASES = [
    ContractCase(
        id="llama_cpp-smollm2",
        make_runner=_llama_runner,
        capability=Capability.LLM,
        request=_chat("Name three colours.", max_tokens=24),
        long_request=_chat("Write a long story about a dragon.", max_tokens=4000),
        bad_request=_chat("hi", top_k="many"),
        work_done=_llama_kv_tokens,
    )
]
