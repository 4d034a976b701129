"""The llama.cpp runner on the real embedded models (SmolLM2; Gemma 3 for switching)."""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from breeze.engine import (
    CancelToken,
    Capability,
    Engine,
    EngineSettings,
    InferenceRequest,
    Registry,
)
from breeze.engine.models import load_catalog, resolve
from breeze.engine.text import Utf8Stream
from breeze.runners._chat_formats import choose
from breeze.runners.llama_cpp import EVAL_CHUNK, LlamaCppRunner

GREEDY = {"temperature": 0.0, "repeat_penalty": 1.0, "top_k": 40, "top_p": 0.95, "min_p": 0.05}


@pytest.fixture(scope="module")
def runner():
    runner = LlamaCppRunner()
    yield runner
    runner.unload()


@pytest.fixture
def engine(runner):
    return Engine(Registry([runner]), EngineSettings(emit_interval_ms=0))


def library_chat(text: str) -> list[dict[str, str]]:
    """The chat as the runner puts it to the default model: with its catalog system prompt."""
    system = next(e for e in load_catalog() if e.default and e.capability == "LLM").system_prompt
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


def library_reply(question: str, params: dict, flash_attn: bool = True) -> dict:
    """llama-cpp-python's own chat completion of `question` on the default model, opened
    with the runner's settings (flash attention as given)."""
    import llama_cpp

    llm = llama_cpp.Llama(str(resolve(None)), n_ctx=4096, n_threads=os.cpu_count(),
                          flash_attn=flash_attn, verbose=False)
    try:
        return llm.create_chat_completion(library_chat(question), **params)["choices"][0]
    finally:
        llm.close()


def ask(text: str, **params) -> InferenceRequest:
    return InferenceRequest({"text": text}, {**GREEDY, **params})


async def test_greedy_output_equals_llama_cpp_python(engine):
    question = "What is the capital of France?"
    ours = await engine.run(ask(question, max_tokens=48))
    theirs = library_reply(question, {"max_tokens": 48, "temperature": 0.0,
                                      "repeat_penalty": 1.0, "top_k": 40, "top_p": 0.95,
                                      "min_p": 0.05})
    assert ours.ok and ours.text
    assert ours.text == theirs["message"]["content"]
    assert ours.metadata["finish_reason"] == theirs["finish_reason"]


@pytest.mark.parametrize("sampling", [
    {"temperature": 0.8, "seed": 1234, "repeat_penalty": 1.1},  # the runner's sampler chain
    {"temperature": 0.0, "repeat_penalty": 1.3},  # greedy after the penalty
])
async def test_sampling_with_a_seed_or_a_penalty_equals_llama_cpp_python(engine, sampling):
    question = "Tell me about the sea."
    params = {"top_k": 40, "top_p": 0.95, "min_p": 0.05, "max_tokens": 40, **sampling}
    ours = await engine.run(InferenceRequest({"text": question}, params))
    assert ours.ok and ours.text
    assert ours.text == library_reply(question, params)["message"]["content"]


async def test_flash_attention_off_gives_the_text_of_the_librarys_defaults(engine):
    """Flash attention changes a greedy reply's arithmetic enough to change its words; with
    `flash_attn` off the runner opens the model as llama-cpp-python does by default."""
    question = "Tell me about the sea."
    params = {"temperature": 0.0, "repeat_penalty": 1.3, "top_k": 40, "top_p": 0.95,
              "min_p": 0.05, "max_tokens": 40}
    flash = await engine.run(InferenceRequest({"text": question}, params))
    plain = await engine.run(InferenceRequest({"text": question},
                                              {**params, "flash_attn": "false"}))
    assert plain.ok and flash.ok
    assert plain.text == library_reply(question, params, flash_attn=False)["message"]["content"]
    assert plain.text != flash.text, "this reply no longer tells the two settings apart"


def test_decoding_leaves_no_thread_team_behind(runner):
    """llama.cpp's OpenMP keeps a team of threads for each thread that has decoded, until
    that thread ends; two teams on the cores slow generation several times over. A thread
    that lives on (a pool's) and asks for a reply must not be left with one."""
    def os_threads() -> int:
        return len(os.listdir("/proc/self/task"))

    runner.load(runner.param_schema().validate({}))
    request = ask("Say hello.", max_tokens=4)
    results: list = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(lambda: None).result()  # the pool's long-lived thread exists
        before = os_threads()
        pool.submit(runner.generate, request, CancelToken(), results.append).result()
        assert results[-1].ok and results[-1].metadata["tokens_generated"] > 0
        deadline = time.monotonic() + 10
        while os_threads() > before and time.monotonic() < deadline:
            time.sleep(0.01)  # a team goes a moment after its thread
        assert os_threads() == before


def test_is_loaded_for_the_params_it_was_loaded_with(runner):
    params = runner.param_schema().validate({"n_ctx": 2048})
    runner.load(params)
    assert runner.is_loaded(params)
    assert not runner.is_loaded(runner.param_schema().validate({"n_ctx": 1024}))
    runner.unload()
    assert not runner.is_loaded(params)


async def test_stream_metadata(engine):
    results = [r async for r in engine.submit(ask("Count from one to ten.", max_tokens=30))]
    partials = [r for r in results if r.partial and r.text]
    assert len(partials) > 3
    m = partials[-1].metadata
    for key in ("tokens_generated", "current_token", "progress_percent", "estimated_total",
                "tokens_per_second", "ttft_ms", "model_name"):
        assert key in m, key
    assert m["model_name"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert m["estimated_total"] == 30 and 0 < m["progress_percent"] <= 100
    final = results[-1]
    assert final.metadata["finish_reason"] in ("stop", "length")
    assert final.metadata["tokens_generated"] <= 30
    assert "".join(r.outputs["delta"] for r in results if "delta" in r.outputs) == final.text


async def test_sentence_mode_emits_whole_sentences(engine):
    results = [r async for r in engine.submit(
        ask("Tell me three short facts about the sun.", max_tokens=120, stream_mode="sentence")
    )]
    partials = [r for r in results if r.partial and "sentence" in r.outputs]
    assert partials, "no sentence was emitted"
    for i, r in enumerate(partials):
        assert r.outputs["sentence"].rstrip()[-1] in ".!?…:;\"')" or "\n" in r.outputs["delta"]
        assert r.metadata["sentence_index"] >= i


async def test_no_broken_characters_in_cjk_and_emoji(engine):
    results = [r async for r in engine.submit(
        ask("Reply only with Chinese characters and emoji: 你好 😀", max_tokens=60)
    )]
    texts = [r.text for r in results]
    assert all("\ufffd" not in t for t in texts)
    assert any(ord(c) > 0x2E80 for c in results[-1].text), results[-1].text


def test_utf8_stream_never_splits_a_character():
    data = "你好😀é".encode()
    for cut in range(1, len(data)):
        stream = Utf8Stream()
        out = stream.feed(data[:cut])
        assert "\ufffd" not in out
        assert out + stream.feed(data[cut:]) + stream.flush() == "你好😀é"
    cut_short = Utf8Stream()
    assert cut_short.feed("好😀".encode()[:-1]) + cut_short.flush() == "好"


async def test_cancel_during_generation_stops_decoding(engine, runner):
    handle = engine.submit(ask("Write a long essay about the sea.", max_tokens=2000))
    async for result in handle:
        if result.metadata.get("tokens_generated", 0) >= 5:
            handle.cancel()
            at_cancel = runner._llm.n_tokens
            break
    terminal = await handle.result()
    assert terminal.metadata["finish_reason"] == "cancelled"
    assert terminal.text.startswith(result.text)
    kv = runner._llm.n_tokens
    assert kv - at_cancel <= 1, "tokens were decoded after cancel"
    await asyncio.sleep(0.3)
    assert runner._llm.n_tokens == kv
    # at once ready for the next request
    again = await engine.run(ask("Say hi.", max_tokens=5))
    assert again.ok and again.metadata["tokens_generated"] > 0


async def test_cancel_during_a_long_prompt_evaluation(engine, runner):
    long_prompt = "Summarise this text. " + " ".join(f"item{i} is blue." for i in range(330))
    handle = engine.submit(ask(long_prompt, max_tokens=20, n_ctx=4096))
    async for result in handle:
        if result.metadata.get("stage") == "prompt":  # the first chunk is evaluated
            evaluated = result.metadata["prompt_tokens_evaluated"]
            total = result.metadata["prompt_tokens"]
            handle.cancel()
            break
    assert total >= 1500, total
    terminal = await handle.result()
    assert terminal.metadata["finish_reason"] == "cancelled"
    assert terminal.metadata.get("tokens_generated", 0) == 0
    # evaluation stopped within a chunk of where it was: most of the prompt never ran
    assert runner._llm.n_tokens <= evaluated + 2 * EVAL_CHUNK < total


async def test_follow_up_turn_reuses_the_kv_cache(engine):
    first = await engine.run(ask("My name is Ada. Remember it.", max_tokens=16))
    history = [
        {"role": "user", "content": "My name is Ada. Remember it."},
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "What is my name?"},
    ]
    second = await engine.run(InferenceRequest({"messages": history}, {**GREEDY, "max_tokens": 8}))
    assert second.ok
    assert second.metadata["prompt_tokens_reused"] >= first.metadata["prompt_tokens"] - 1


async def test_oldest_turns_dropped_but_never_the_system_prompt(engine):
    history = []
    for i in range(30):
        history.append({"role": "user", "content": f"Fact {i}: the number {i} is nice. " * 3})
        history.append({"role": "assistant", "content": "Noted."})
    history.append({"role": "user", "content": "Reply with OK."})
    result = await engine.run(InferenceRequest(
        {"messages": history},
        {**GREEDY, "max_tokens": 8, "n_ctx": 512, "system_prompt": "You are terse."},
    ))
    assert result.ok, result.error
    assert result.metadata["turns_dropped"] > 0
    assert result.metadata["prompt_tokens"] <= 512


@pytest.mark.parametrize(
    ("params", "inputs", "code"),
    [
        ({}, {"text": ""}, "E400"),
        ({}, {"text": "   "}, "E400"),
        ({"stop": [1, 2]}, {"text": "hi"}, "E400"),
        ({"stop": 5}, {"text": "hi"}, "E400"),
        ({"temperature": "hot"}, {"text": "hi"}, "E400"),
        ({"temperature": 9}, {"text": "hi"}, "E400"),
        ({"max_tokens": -1}, {"text": "hi"}, "E400"),
        ({"unknown_knob": 1}, {"text": "hi"}, "E400"),
        ({"model": "/nonexistent/model.gguf"}, {"text": "hi"}, "E501"),
    ],
)
async def test_bad_inputs(engine, params, inputs, code):
    result = await engine.run(InferenceRequest(inputs, params))
    assert result.error is not None and result.error.code == code, result
    if code == "E400" and params:
        assert list(params)[0] in result.error.message


async def test_corrupt_gguf_is_e502(engine, tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + os.urandom(4096))
    result = await engine.run(ask("hi", model=str(bad)))
    assert result.error is not None and result.error.code == "E502"
    not_gguf = tmp_path / "text.gguf"
    not_gguf.write_text("hello")
    result = await engine.run(ask("hi", model=str(not_gguf)))
    assert result.error is not None and result.error.code == "E502"
    assert (await engine.run(ask("hi", max_tokens=2))).ok  # the default model still works


async def test_max_tokens_zero_generates_nothing(engine):
    result = await engine.run(ask("hi", max_tokens=0))
    assert result.ok and result.text == "" and result.metadata["finish_reason"] == "length"


async def test_ten_megabyte_prompt_fails_fast(engine):
    start = time.perf_counter()
    result = await engine.run(ask("x" * 10_000_000))
    assert result.error is not None and result.error.code == "E504"
    assert time.perf_counter() - start < 30


async def test_stop_strings_end_the_reply(engine):
    free = await engine.run(ask("Count from 1 to 10 separated by commas.", max_tokens=40))
    assert "3" in free.text
    cut = free.text.index("3")
    stopped = await engine.run(
        ask("Count from 1 to 10 separated by commas.", max_tokens=40, stop=["3"])
    )
    assert stopped.text == free.text[:cut]
    assert stopped.metadata["finish_reason"] == "stop"


async def test_a_stop_string_over_several_tokens_ends_the_reply(engine):
    free = await engine.run(ask("Count from 1 to 10.", max_tokens=40))
    stop = free.text[8:14]  # six characters from a few tokens in: the reply's own words
    assert len(stop.strip()) >= 4, free.text
    stopped = await engine.run(ask("Count from 1 to 10.", max_tokens=40, stop=[stop]))
    assert stopped.text == free.text[:free.text.index(stop)]
    assert stopped.metadata["finish_reason"] == "stop"


async def test_switching_models(engine):
    gemma = await engine.run(ask("Say hello.", model="gemma3-270m", max_tokens=8))
    assert gemma.ok, gemma.error
    assert gemma.metadata["model_name"] == "gemma-3-270m-q4_k_m.gguf"
    smol = await engine.run(ask("Say hello.", max_tokens=8))
    assert smol.metadata["model_name"] == "SmolLM2-135M-Instruct.Q4_1.gguf"


PACKAGED_LLMS = [e.id for e in load_catalog() if e.capability == "LLM" and e.source == "package"]


@pytest.mark.parametrize("model", PACKAGED_LLMS)
async def test_every_packaged_catalog_model_answers(engine, model):
    question = {"text": "What is the capital of France?"}  # the runner's defaults, greedy
    result = await engine.run(InferenceRequest(question, {"model": model, "temperature": 0,
                                                          "max_tokens": 40}))
    assert result.ok, result.error
    assert "Paris" in result.text, result.text
    assert "<|im_start|>" not in result.text and "<start_of_turn>" not in result.text
    assert result.text == result.text.lstrip(), "the reply starts with a blank"


def test_a_file_without_a_template_gets_the_format_of_its_architecture():
    assert choose({"general.architecture": "gemma3"}, None).name == "gemma"
    assert choose({"general.architecture": "llama"}, None).name == "chatml"
    assert choose({"tokenizer.chat_template": "{{x}}"}, None).template == "{{x}}"
    assert choose({"tokenizer.chat_template": "{{x}}"}, "transcript").name == "transcript"


async def test_continue_a_stopped_reply(engine):
    question = {"role": "user", "content": "List the days of the week."}
    full = await engine.run(InferenceRequest({"messages": [question]}, {**GREEDY,
                                                                        "max_tokens": 40}))
    head = full.text[:full.text.index(" ", 12)]  # a reply stops at the end of a token
    rest = await engine.run(InferenceRequest(
        {"messages": [question, {"role": "assistant", "content": head}]},
        {**GREEDY, "max_tokens": 30},
    ))
    assert rest.ok and rest.text
    assert (head + rest.text)[:30] == full.text[:30]
    assert engine.first_runner(Capability.LLM).continues_replies  # the app offers ctrl+g


async def test_a_request_waiting_behind_another_can_be_cancelled(runner, monkeypatch):
    import threading

    import llama_cpp

    engine = Engine(Registry([runner]), EngineSettings(emit_interval_ms=0, cancel_grace_s=600))
    await engine.preload()
    busy, release = threading.Event(), threading.Event()
    original = llama_cpp.Llama.tokenize

    def tokenize(self, text: bytes, *args, **kwargs):
        if b"hold the model" in text and not busy.is_set():  # the first request holds it
            busy.set()
            release.wait(120)
        return original(self, text, *args, **kwargs)

    monkeypatch.setattr(llama_cpp.Llama, "tokenize", tokenize)
    first = engine.submit(ask("Please hold the model.", max_tokens=2))
    try:
        assert await asyncio.to_thread(busy.wait, 120)
        waiting = engine.submit(ask("Say hi.", max_tokens=2))
        waiting.cancel()
        # the grace period is long: this terminal comes from the waiting worker itself
        terminal = await asyncio.wait_for(waiting.result(), 120)
        assert terminal.metadata["finish_reason"] == "cancelled"
    finally:
        release.set()
    assert (await asyncio.wait_for(first.result(), 120)).ok
