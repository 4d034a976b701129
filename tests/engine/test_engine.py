"""Engine behaviour beyond the contract: routing, fallback, retry, params, metadata."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import MappingProxyType

import pytest

from breeze.engine import (
    BreezeError,
    CancelToken,
    Capability,
    Engine,
    EngineSettings,
    InferenceRequest,
    InferenceResult,
    Registry,
    RetryPolicy,
    RunnerError,
    result_to_dict,
)
from tests.contract.scripted import (
    FailingMidStream,
    FlakyRunner,
    HangingRunner,
    OneShotRunner,
    ScriptedLLM,
    UnloadableRunner,
)

FAST_RETRY = RetryPolicy(max_retries=3, base_delay_s=0.001, max_delay_s=0.01)


def make_engine(*runners, **settings) -> Engine:
    settings.setdefault("retry", FAST_RETRY)
    return Engine(Registry(runners), EngineSettings(**settings))


def text_request(**params) -> InferenceRequest:
    return InferenceRequest({"text": "hi"}, params)


async def test_fallback_when_the_preferred_runner_cannot_load():
    engine = make_engine(UnloadableRunner(), ScriptedLLM())
    result = await engine.run(text_request(max_tokens=3))
    assert result.ok
    assert result.metadata["runner_name"] == "scripted-llm"
    assert result.metadata["fallback_from"] == ["scripted-missing-model"]
    assert "E501" in result.metadata["fallback_reason"]


async def test_explicit_runner_does_not_fall_back():
    engine = make_engine(UnloadableRunner(), ScriptedLLM())
    result = await engine.run(text_request(), runner="scripted-missing-model")
    assert result.error is not None and result.error.code == "E501"


async def test_user_preference_beats_priority():
    engine = make_engine(
        ScriptedLLM(), HangingRunner(), preferred_runners={Capability.LLM: "scripted-hanging"}
    )
    handle = engine.submit(text_request())
    first = await handle.__anext__()
    assert first.metadata["runner_name"] == "scripted-hanging"
    handle.cancel()
    assert (await handle.result()).metadata["finish_reason"] == "cancelled"


class DownloadsOnLoad(ScriptedLLM):
    """Its model downloads on load: a cancel of the request stops the download (E500)."""

    name = "scripted-downloading"
    priority = 100

    def __init__(self) -> None:
        super().__init__()
        self.token: CancelToken | None = None

    def load(self, params: object) -> None:
        assert self.token is not None
        if not self.token.wait(10):
            raise AssertionError("the request was never cancelled")
        raise BreezeError("E500", "download cancelled")


async def test_a_cancel_during_a_load_is_a_cancel_not_a_failure_to_fall_back_from():
    downloading = DownloadsOnLoad()
    engine = make_engine(downloading, ScriptedLLM())
    handle = engine.submit(text_request())
    downloading.token = handle.token
    await asyncio.sleep(0.05)
    handle.cancel()
    result = await handle.result()
    assert result.ok and result.metadata["finish_reason"] == "cancelled"
    assert "runner_name" not in result.metadata  # scripted-llm was not tried instead


def test_first_runner_is_where_a_request_goes_first():
    engine = make_engine(ScriptedLLM(), HangingRunner())
    assert engine.first_runner(Capability.LLM).name == "scripted-llm"  # by priority
    assert engine.first_runner(Capability.LLM, "scripted-hanging").name == "scripted-hanging"
    engine.settings.preferred_runners = {Capability.LLM: "scripted-hanging"}
    assert engine.first_runner(Capability.LLM).name == "scripted-hanging"
    assert engine.first_runner(Capability.LLM).continues_replies is False  # the default
    with pytest.raises(BreezeError) as raised:
        engine.first_runner(Capability.ASR)
    assert raised.value.error.code == "E405"


@pytest.mark.parametrize(
    ("request_", "runner", "code"),
    [
        (InferenceRequest({}), None, "E400"),
        (InferenceRequest({"text": 3}), None, "E400"),
        (InferenceRequest({"messages": [{"role": "robot", "content": "x"}]}), None, "E400"),
        (InferenceRequest({"video": b""}), None, "E400"),
        (InferenceRequest({"microphone": "", "mute": True}), None, "E400"),
        (InferenceRequest({"text": "hi"}, {"max_tokens": "many"}), None, "E400"),
        (InferenceRequest({"text": "hi"}, {"no_such_param": 1}), None, "E400"),
        (InferenceRequest({"text": "hi"}), "no-such-runner", "E404"),
        (InferenceRequest({"text": "hi"}), "scripted-oneshot", "E405"),
        (InferenceRequest({"image": b"\x89PNG"}), None, "E405"),
        (InferenceRequest({"text": "hi"}, capability="SMELL"), None, "E405"),
    ],
)
async def test_bad_input_is_an_error_result(request_, runner, code):
    engine = make_engine(ScriptedLLM(), OneShotRunner())
    result = await engine.run(request_, runner=runner)
    assert not result.partial
    assert result.error is not None and result.error.code == code, result.error


async def test_routing_by_inputs_and_one_shot_runner():
    engine = make_engine(ScriptedLLM(), OneShotRunner())
    tts = InferenceRequest({"text": "say this"}, capability=Capability.TTS)
    results = [r async for r in engine.submit(tts)]
    assert len(results) == 1 and results[0].outputs["audio"] == b"say this"
    assert results[0].metadata["runner_name"] == "scripted-oneshot"
    llm = await engine.run(InferenceRequest({"messages": [{"role": "user", "content": "x"}]}))
    assert llm.metadata["runner_name"] == "scripted-llm"


async def test_retry_recovers_before_any_output():
    flaky = FlakyRunner(failures=2)
    result = await make_engine(flaky).run(text_request())
    assert result.ok and result.text == "ok"
    assert flaky.attempts == 3
    assert result.metadata["retries"] == 2


def test_retry_waits_as_long_as_the_backend_asks_within_a_limit():
    policy = RetryPolicy(base_delay_s=0.5, max_retry_after_s=30)
    asks = RunnerError("E429", "rate limited", True, retry_after_s=4.0)
    assert policy.delay(1) == 0.5 and policy.delay(1, asks) == 4.0
    assert policy.allows(1, asks)
    assert not policy.allows(1, RunnerError("E429", "rate limited", True, retry_after_s=31))
    assert not policy.allows(policy.max_retries + 1, asks)


async def test_retry_gives_up_with_the_last_error_and_its_code():
    flaky = FlakyRunner(failures=10)
    result = await make_engine(flaky).run(text_request())
    assert result.error is not None and result.error.code == "E102"
    assert result.error.message == "connection refused (attempt 4) (after 3 retries)"
    assert flaky.attempts == 4


async def test_unrecoverable_error_is_not_retried():
    flaky = FlakyRunner(failures=1, recoverable=False)
    result = await make_engine(flaky).run(text_request())
    assert result.error is not None and flaky.attempts == 1


async def test_backoff_is_exponential():
    policy = RetryPolicy(max_retries=5, base_delay_s=0.5, factor=2, max_delay_s=3)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3, 3]


async def test_error_mid_stream_keeps_text_and_is_not_retried():
    runner = FailingMidStream()
    results = [r async for r in make_engine(runner).submit(text_request())]
    assert results[-1].error.code == "E101"
    assert results[-1].text == "the quick brown "


async def test_runner_that_ignores_cancel_is_stopped_after_the_grace_period():
    runner = HangingRunner(honour_token=False)
    engine = make_engine(runner, cancel_grace_s=0.1)
    handle = engine.submit(text_request())
    await handle.__anext__()
    handle.cancel()
    terminal = await asyncio.wait_for(handle.result(), 2)
    assert terminal.metadata["finish_reason"] == "cancelled"
    assert terminal.text == "waiting"
    assert runner.cleaned_up == 1


async def test_cancel_from_another_thread():
    engine = make_engine(ScriptedLLM(delay_s=0.01))
    handle = engine.submit(text_request(max_tokens=10_000))
    await handle.__anext__()
    await asyncio.to_thread(handle.cancel)
    assert (await handle.result()).metadata["finish_reason"] == "cancelled"


async def test_model_loads_once_per_request_check():
    runner = ScriptedLLM()
    engine = make_engine(runner)
    for _ in range(3):
        await engine.run(text_request(max_tokens=2))
    assert runner.loads == 3  # load() is called per request and must be cheap when loaded


class KnowsItIsLoaded(ScriptedLLM):
    name = "scripted-knows-it-is-loaded"

    def is_loaded(self, params: object) -> bool:
        return self.loads > 0


async def test_a_runner_that_says_it_is_loaded_is_not_loaded_again():
    runner = KnowsItIsLoaded()
    engine = make_engine(runner)
    for _ in range(3):
        assert (await engine.run(text_request(max_tokens=2))).ok
    assert runner.loads == 1


async def test_run_here_ends_as_run_does():
    engine = make_engine(ScriptedLLM())
    here = await engine.run_here(text_request(max_tokens=3))
    there = await engine.run(text_request(max_tokens=3))
    assert here.text == there.text == "the quick brown "
    assert not here.partial and here.metadata["finish_reason"] == "length"
    assert set(here.metadata) == set(there.metadata)  # runner_name, ttft_ms, elapsed_ms...
    assert here.metadata["request_id"] != there.metadata["request_id"]
    failed = await engine.run_here(text_request(max_tokens=-1))
    assert failed.error is not None and failed.error.code == "E400"


async def test_cancelling_the_caller_of_run_here_stops_its_runner():
    runner = ScriptedLLM(delay_s=0.005)
    task = asyncio.ensure_future(make_engine(runner).run_here(text_request(max_tokens=100_000)))
    await asyncio.sleep(0.2)
    assert runner.work_units > 0 and not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stopped_at = runner.work_units
    await asyncio.sleep(0.1)
    assert runner.work_units - stopped_at <= 1


async def test_user_default_params_apply_and_request_params_win():
    engine = make_engine(ScriptedLLM(), runner_params={"scripted-llm": {"max_tokens": 2}})
    assert (await engine.run(text_request())).metadata["finish_reason"] == "length"
    assert (await engine.run(text_request())).text == "the quick "
    assert (await engine.run(text_request(max_tokens=3))).text == "the quick brown "


async def test_first_token_is_not_delayed_by_pacing():
    engine = make_engine(ScriptedLLM(delay_s=0.001), emit_interval_ms=200)
    handle = engine.submit(text_request(max_tokens=50))
    first = await handle.__anext__()
    assert first.text == "the " and "ttft_ms" in first.metadata
    rest = [r async for r in handle]
    # 50 tokens in ~50 ms, paced at 200 ms: later partials are merged, not dropped
    assert len(rest) < 10
    assert rest[-1].text.count(" ") == 50


async def test_json_line_shape():
    result = await make_engine(OneShotRunner()).run(
        InferenceRequest({"text": "abc"}, capability="TTS")
    )
    line = result_to_dict(result)
    assert set(line) == {"request_id", "partial", "outputs", "metadata", "error"}
    assert line["outputs"]["audio"] == 3  # bytes are replaced by their length
    assert line["request_id"] == result.metadata["request_id"]


def test_json_lines_hold_what_json_cannot_as_what_it_can():
    result = InferenceResult.success(
        {"audio": b"abc", "pairs": ((1, 2), [3])},
        {"info": MappingProxyType({"ok": True, 7: None}), "path": Path("/tmp/x"), "n": 1.5},
        partial=True,
    )
    line = result_to_dict(result)
    assert line["outputs"] == {"audio": 3, "pairs": [[1, 2], [3]]}
    assert line["metadata"] == {"info": {"ok": True, "7": None}, "path": "/tmp/x", "n": 1.5}


def test_unknown_error_code_is_refused():
    with pytest.raises(ValueError):
        BreezeError("E999", "nope")


@pytest.mark.parametrize(("inputs", "params", "says"), [
    ({"text": "hi"}, "temperature=0", "params must be a mapping"),
    ({"text": "caf\udce9"}, {}, "not valid Unicode"),
    ({"messages": [{"role": "user", "content": "\ud800"}]}, {}, "not valid Unicode"),
])
async def test_malformed_requests_are_e400_not_a_runner_failure(inputs, params, says):
    result = await make_engine(ScriptedLLM()).run(InferenceRequest(inputs, params))
    assert result.error is not None and result.error.code == "E400", result.error
    assert says in result.error.message
