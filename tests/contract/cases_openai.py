"""The OpenAI-compatible runner joins the contract suite, streaming from the llama.cpp server
of tests/runners/conftest.py. Cases are module-level data, so the server starts lazily: when
a case first builds its runner (once per test process, stopped at exit or by the session
fixture). That the server stops generating on cancel is asserted in
tests/runners/test_openai_compat.py (its log, its CPU time and its next answer), not through
`work_done`: a remote server's work cannot be read from the runner."""

from __future__ import annotations

from collections.abc import Callable

from breeze.engine import Capability, InferenceRequest, Runner
from tests.runners.conftest import shared_server

from .cases import ContractCase


def _openai_runner() -> Runner:
    from breeze.runners.openai_compat import OpenAIRunner

    return OpenAIRunner(shared_server().profile())


def _chat(text: str, **params: object) -> Callable[[], InferenceRequest]:
    return lambda: InferenceRequest({"text": text}, {"temperature": 0.0, **params})


CASES = [
    ContractCase(
        id="openai-llama-server",
        make_runner=_openai_runner,
        capability=Capability.LLM,
        request=_chat("Name three colours.", max_tokens=24),
        long_request=_chat("Write a long essay about the sea.", max_tokens=1900),
        bad_request=_chat("hi", temperature="hot"),
        cycles=50,
    )
]
