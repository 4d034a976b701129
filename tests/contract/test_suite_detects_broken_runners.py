"""The contract suite is only worth something if it fails on a runner that breaks a rule:
each broken runner here breaks one rule, and the suite's own test functions must fail."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator

import pytest

from breeze.engine import (
    CancelToken,
    Capability,
    Emit,
    Engine,
    EngineSettings,
    InferenceRequest,
    InferenceResult,
    Registry,
    Runner,
)

from . import test_contract as suite
from .cases import ContractCase
from .scripted import ScriptedLLM


def _partial(text: str) -> InferenceResult:
    return InferenceResult.success({"text": text}, partial=True)


class _Scripted(Runner):
    name = "broken"
    capabilities = frozenset({Capability.LLM})
    script: list[InferenceResult] = []

    async def stream(self, request, token) -> AsyncIterator[InferenceResult]:
        for result in self.script:
            yield result


class NoTerminal(_Scripted):
    script = [_partial("a"), _partial("ab")]


class ResultAfterTerminal(_Scripted):
    script = [_partial("a"), InferenceResult.success({"text": "ab"}), _partial("abc")]


class IntermediateMarkedFinal(_Scripted):
    script = [InferenceResult.success({"text": "a"}), InferenceResult.success({"text": "ab"})]


class ShrinkingText(_Scripted):
    script = [_partial("hello"), _partial("help"), InferenceResult.success({"text": "help"})]


class SingleResult(_Scripted):
    script = [InferenceResult.success({"text": "all at once"})]


class RaisesToTheConsumer(_Scripted):
    async def stream(self, request, token) -> AsyncIterator[InferenceResult]:
        yield _partial("a")
        raise RuntimeError("escaped")


class IgnoresCancel(ScriptedLLM):
    name = "broken"

    def generate(self, request: InferenceRequest, token: CancelToken, emit: Emit) -> None:
        for i in range(200):
            self.work_units += 1
            emit(InferenceResult.success({"text": "x" * (i + 1)}, partial=True))
            time.sleep(0.005)
        emit(InferenceResult.success({"text": "x" * 200}))


class LeaksAThread(ScriptedLLM):
    name = "broken"

    def generate(self, request: InferenceRequest, token: CancelToken, emit: Emit) -> None:
        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
        super().generate(request, token, emit)


def _case(runner: type[Runner], **overrides) -> ContractCase:
    request = lambda: InferenceRequest({"text": "hi"})  # noqa: E731
    fields = dict(
        id=runner.__name__,
        make_runner=runner,
        capability=Capability.LLM,
        request=request,
        long_request=request,
        bad_request=request,
    )
    fields.update(overrides)
    return ContractCase(**fields)


def _engine(case: ContractCase) -> Engine:
    runner = case.make_runner()
    engine = Engine(Registry([runner]), EngineSettings(cancel_grace_s=0.2))
    engine.runner = runner  # type: ignore[attr-defined]
    return engine


@pytest.mark.parametrize(
    "runner",
    [NoTerminal, ResultAfterTerminal, IntermediateMarkedFinal, ShrinkingText, RaisesToTheConsumer],
)
async def test_raw_stream_rules_catch(runner: type[Runner]):
    with pytest.raises((AssertionError, RuntimeError)):
        await suite.test_runner_stream_itself_keeps_the_contract(_case(runner))


async def test_single_result_is_not_streaming():
    case = _case(SingleResult)
    with pytest.raises(AssertionError, match="more than one result"):
        await suite.test_streams_progressively(case, _engine(case))


async def test_working_after_cancel_is_caught():
    long = lambda: InferenceRequest({"text": "hi"}, {"max_tokens": 200})  # noqa: E731
    case = _case(IgnoresCancel, long_request=long, work_done=lambda r: r.work_units)
    with pytest.raises(AssertionError, match="worked after cancel"):
        await suite.test_cancel_ends_with_cancelled_and_stops_work(case, _engine(case))


async def test_leaked_threads_are_caught():
    long = lambda: InferenceRequest({"text": "hi"}, {"max_tokens": 1000})  # noqa: E731
    case = _case(LeaksAThread, long_request=long, cycles=5)
    with pytest.raises(AssertionError, match="threads leaked"):
        await suite.test_no_leak_after_many_submit_cancel_cycles(case, _engine(case))
