"""A long chat history fitted into the context window (llama.cpp runner, embedded SmolLM2):
the work does not grow with the turns that are dropped, and a cancel stops it."""

from __future__ import annotations

import asyncio
import random
import threading

import llama_cpp
import pytest

from breeze.engine import Engine, EngineSettings, InferenceRequest, Registry
from breeze.runners.llama_cpp import LlamaCppRunner

GREEDY = {"temperature": 0.0, "repeat_penalty": 1.0, "top_k": 40, "top_p": 0.95, "min_p": 0.05}
WAIT_S = 120.0  # an upper bound only: the events waited for come in well under a second
_WORDS = ("river stone light paper window garden music quiet number letter morning yellow "
          "bridge market winter candle forest orange silver planet").split()


def history(turns: int, chars: int = 2000) -> list[dict[str, str]]:
    """`turns` turns of `chars` characters, then a question; the newest turns are the same
    whatever the length of the history."""
    messages = []
    for age in range(turns, 0, -1):
        rng = random.Random(age)
        text = f"Turn {age}."
        while len(text) < chars:
            text += " " + rng.choice(_WORDS)
        messages.append({"role": "assistant" if age % 2 else "user", "content": text})
    messages.append({"role": "user", "content": "Reply with OK."})
    return messages


@pytest.fixture(scope="module")
def runner():
    runner = LlamaCppRunner()
    yield runner
    runner.unload()


@pytest.fixture
def engine(runner):
    return Engine(Registry([runner]), EngineSettings(emit_interval_ms=0))


@pytest.fixture
def tokenized(monkeypatch) -> list[int]:
    """The length of every text the model tokenizes (through its public `tokenize`)."""
    lengths: list[int] = []
    original = llama_cpp.Llama.tokenize

    def counting(self, text: bytes, *args, **kwargs):
        lengths.append(len(text))
        return original(self, text, *args, **kwargs)

    monkeypatch.setattr(llama_cpp.Llama, "tokenize", counting)
    return lengths


async def fit(engine: Engine, messages, **params):
    """Only the fitting: max_tokens=0 evaluates nothing."""
    request = InferenceRequest({"messages": messages}, {**GREEDY, "max_tokens": 0, **params})
    return await engine.run(request)


async def test_tokenizing_does_not_grow_with_the_turns_dropped(engine, tokenized):
    await engine.preload(params={"n_ctx": 1024})
    counts, sizes, results = [], [], []
    for turns in (30, 300, 3000):
        tokenized.clear()
        result = await fit(engine, history(turns, chars=500), n_ctx=1024,
                           system_prompt="You are terse.")
        assert result.ok, result.error
        counts.append(len(tokenized))
        sizes.append(sum(tokenized))
        results.append(result)
    kept = [turns - r.metadata["turns_dropped"] for turns, r in zip((30, 300, 3000), results,
                                                                     strict=True)]
    assert kept[0] == kept[1] == kept[2] > 0, kept  # the same newest turns fit each time
    # once each kept turn, the one that did not fit, the prompt without and with them
    assert counts[0] == counts[1] == counts[2] <= kept[0] + 3, counts
    # the kept turns twice (alone, then in the prompt), the turn that did not fit, the short
    # prompt without them: however much was dropped
    assert sizes[0] == sizes[1] == sizes[2] <= (2 * kept[0] + 1) * 500 + 1000, sizes
    for result in results:
        tokens = result.metadata["prompt_tokens"]
        assert tokens <= 1024
        # no more dropped than needed: less than two turns' worth of the window is left over
        per_turn = 500 / 4
        assert 1024 - tokens < 2 * per_turn, tokens


async def test_the_last_message_alone_too_long_is_e504(engine):
    result = await fit(engine, history(20, chars=300)[:-1] + [
        {"role": "user", "content": " ".join(["word"] * 2000)}
    ], n_ctx=512)
    assert result.error is not None and result.error.code == "E504"
    assert "tokens" in result.error.message


async def test_cancel_during_a_fit_stops_it_and_frees_the_runner(runner, monkeypatch):
    engine = Engine(Registry([runner]), EngineSettings(emit_interval_ms=0, cancel_grace_s=600))
    await engine.preload(params={"n_ctx": 4096})
    in_fit, go_on = threading.Event(), threading.Event()
    calls: list[int] = []
    original = llama_cpp.Llama.tokenize

    def tokenize(self, text: bytes, *args, **kwargs):
        calls.append(len(text))
        if len(calls) == 2:  # inside the fit, past its first step: hold it until cancelled
            in_fit.set()
            go_on.wait(WAIT_S)
        return original(self, text, *args, **kwargs)

    monkeypatch.setattr(llama_cpp.Llama, "tokenize", tokenize)
    request = InferenceRequest({"messages": history(300)}, {**GREEDY, "max_tokens": 16})
    handle = engine.submit(request)
    try:
        assert await asyncio.to_thread(in_fit.wait, WAIT_S)
        handle.cancel()
        at_cancel = len(calls)
    finally:
        go_on.set()
    # the grace period is long: a cancelled terminal now can only come from the worker
    terminal = await asyncio.wait_for(handle.result(), WAIT_S)
    assert terminal.metadata["finish_reason"] == "cancelled"
    assert terminal.metadata.get("tokens_generated", 0) == 0
    assert len(calls) == at_cancel, "the fit went on tokenizing after the cancel"
    monkeypatch.undo()
    answer = await asyncio.wait_for(
        engine.run(InferenceRequest({"text": "Say hi."}, {**GREEDY, "max_tokens": 3})), WAIT_S
    )
    assert answer.ok and answer.metadata["tokens_generated"] > 0
