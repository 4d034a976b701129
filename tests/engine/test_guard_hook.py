"""The engine's guard hook: input checked before any runner works, output wrapped."""

from __future__ import annotations

from breeze.engine import (
    Engine,
    EngineSettings,
    InferenceRequest,
    InferenceResult,
    Registry,
    RunnerError,
)
from breeze.engine.guard import GuardVerdict
from tests.contract.scripted import OneShotRunner, ScriptedLLM


class ShoutingGuard:
    def __init__(self) -> None:
        self.outputs_seen = 0

    async def check_input(self, engine, request):
        if "forbidden" in request.inputs.get("text", ""):
            error = RunnerError.of("G100", "blocked by the guardian: forbidden word")
            return GuardVerdict(blocked=InferenceResult.failure(error))
        return GuardVerdict(metadata={"guardian": "checked"})

    async def guard_output(self, engine, request, results, token):
        async for result in results:
            self.outputs_seen += 1
            yield result.with_outputs(text=result.text.upper())


async def test_blocked_input_never_reaches_a_runner():
    runner = ScriptedLLM()
    engine = Engine(Registry([runner]), EngineSettings(guard=ShoutingGuard()))
    result = await engine.run(InferenceRequest({"text": "a forbidden thing"}))
    assert result.error is not None and result.error.code == "G100"
    assert runner.loads == 0 and runner.work_units == 0


async def test_output_passes_through_the_guard_and_metadata_is_added():
    guard = ShoutingGuard()
    engine = Engine(Registry([ScriptedLLM()]), EngineSettings(guard=guard))
    results = [r async for r in engine.submit(InferenceRequest({"text": "hi"}, {"max_tokens": 3}))]
    assert results[-1].text == "THE QUICK BROWN "
    assert all(r.metadata["guardian"] == "checked" for r in results)
    assert guard.outputs_seen >= 2


async def test_other_capabilities_are_not_guarded():
    engine = Engine(Registry([OneShotRunner()]), EngineSettings(guard=ShoutingGuard()))
    result = await engine.run(InferenceRequest({"text": "forbidden"}, capability="TTS"))
    assert result.ok and result.outputs["audio"] == b"forbidden"
