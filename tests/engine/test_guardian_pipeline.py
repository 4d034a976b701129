"""The guardian pipeline around LLM turns: each strategy at each checkpoint, failures under
both settings, and output moderation of scripted and real (llama.cpp) streamed replies."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from breeze.engine import (
    BlockingRunner,
    BreezeError,
    CancelToken,
    Capability,
    Emit,
    Engine,
    EngineSettings,
    InferenceRequest,
    InferenceResult,
    ParamSchema,
    Registry,
    Runner,
)
from breeze.engine.guardian import Checkpoint, GuardianSettings, Strategy, make_guard
from breeze.runners._guardian_checks import find_personal_data
from breeze.runners.guardian import GuardianRunner
from breeze.runners.llama_cpp import LlamaCppRunner
from tests.contract.rules import check_single_terminal, check_text_grows
from tests.contract.scripted import ScriptedLLM

CARD, MAIL = "4111 1111 1111 1111", "bob@example.com"
REPLY = f"Sure. My card is {CARD} and my mail is {MAIL}. Thanks! Bye"
MASKED = "Sure. My card is [card number] and my mail is [email]. Thanks! Bye"
SECRETS = ("4111", "1111 1111", "bob@", "example.com")


class ScriptedReply(BlockingRunner):
    """Streams a known reply `chunk` characters at a time; records its requests and work."""

    name = "scripted-reply"
    capabilities = frozenset({Capability.LLM})

    def __init__(self, reply: str = REPLY, chunk: int = 3, delay_s: float = 0.0,
                 finish: str = "stop") -> None:
        self.reply, self.chunk, self.delay_s, self.finish = reply, chunk, delay_s, finish
        self.requests: list[InferenceRequest] = []
        self.loads = 0
        self.pieces = 0

    def param_schema(self) -> ParamSchema:
        return ParamSchema(())

    def load(self, params: object) -> None:
        self.loads += 1

    def generate(self, request: InferenceRequest, token: CancelToken, emit: Emit) -> None:
        self.requests.append(request)
        text = ""
        for at in range(0, len(self.reply), self.chunk):
            if token.cancelled:
                break
            self.pieces += 1
            delta = self.reply[at:at + self.chunk]
            text += delta
            emit(InferenceResult.success({"text": text, "delta": delta}, partial=True))
            if self.delay_s:
                time.sleep(self.delay_s)
        reason = "cancelled" if token.cancelled else self.finish
        emit(InferenceResult.success({"text": text}, {"finish_reason": reason}))


class BrokenGuardian(GuardianRunner):
    """Takes the guardian's parameters, then fails on every check."""

    def load(self, params: object) -> None:
        pass

    async def stream(self, request, token):
        raise RuntimeError("the classifier exploded")
        yield  # an async generator that fails on its first step


@pytest.fixture(scope="module")
def guardian():
    runner = GuardianRunner()
    runner.load({})
    return runner


def make_engine(guardian: Runner | None, llm: Runner, **settings) -> Engine:
    guard = make_guard(GuardianSettings(**settings))
    runners = [llm] if guardian is None else [guardian, llm]
    return Engine(Registry(runners), EngineSettings(guard=guard, emit_interval_ms=0))


async def collect(engine: Engine, request: InferenceRequest, delay: float = 0.0):
    results = []
    async for result in engine.submit(request):
        results.append(result)
        if delay:
            await asyncio.sleep(delay)
    check_single_terminal(results)
    return results


def ask(text: str = "hello", **params) -> InferenceRequest:
    return InferenceRequest({"text": text}, params)


def assert_nothing_unmasked(results) -> None:
    for result in results:
        for secret in SECRETS:
            assert secret not in result.text, f"{secret!r} reached the consumer: {result.text!r}"


# -- input ---------------------------------------------------------------------------------

async def test_an_offensive_prompt_is_blocked_before_the_llm_is_even_loaded(guardian):
    llm = ScriptedLLM()
    results = await collect(make_engine(guardian, llm), ask("You are a fucking idiot."))
    [terminal] = results
    assert terminal.error is not None and terminal.error.code == "G100"
    assert "offensive language in the prompt" in terminal.error.message
    assert llm.loads == 0 and llm.work_units == 0
    info = terminal.metadata["guardian_input"]
    assert info["action"] == "blocked" and info["issues"][0]["type"] == "offensive"


async def test_a_clean_prompt_is_answered_and_every_result_carries_the_verdict(guardian):
    results = await collect(make_engine(guardian, ScriptedLLM()), ask("Hi there!",
                                                                      max_tokens=5))
    assert results[-1].ok and results[-1].text == "the quick brown fox jumps "
    for result in results:
        assert result.metadata["guardian_input"]["action"] == "passed"
        assert result.metadata["guardian_input"]["status"] == "safe"


async def test_warn_on_input_answers_with_the_warning(guardian):
    engine = make_engine(guardian, ScriptedLLM(), input=Checkpoint(Strategy.WARN, ("offensive",)))
    results = await collect(engine, ask("You are a fucking idiot.", max_tokens=3))
    assert results[-1].ok and results[-1].text
    assert all(r.metadata["guardian_input"]["action"] == "warned" for r in results)
    assert results[-1].metadata["guardian_input"]["status"] == "unsafe"


async def test_a_warning_level_prompt_passes_block(guardian):
    results = await collect(make_engine(guardian, ScriptedLLM()), ask("What a damn good day",
                                                                      max_tokens=3))
    assert results[-1].ok
    assert results[-1].metadata["guardian_input"]["action"] == "warned"


@pytest.mark.parametrize("as_messages", [False, True])
async def test_filter_on_input_masks_the_prompt_the_llm_sees(guardian, as_messages):
    llm = ScriptedReply("ok")
    engine = make_engine(guardian, llm, input=Checkpoint(Strategy.FILTER, ("personal_data",)))
    prompt = f"my card is {CARD}"
    if as_messages:
        history = [{"role": "user", "content": f"old {MAIL}"},
                   {"role": "assistant", "content": "hi"}]
        request = InferenceRequest({"messages": [*history, {"role": "user", "content": prompt}]})
    else:
        request = ask(prompt)
    results = await collect(engine, request)
    assert results[-1].ok and results[-1].metadata["guardian_input"]["action"] == "filtered"
    seen = llm.requests[0].inputs
    if as_messages:
        assert seen["messages"][-1]["content"] == "my card is [card number]"
        assert seen["messages"][:2] == history  # only what the user just said is checked
    else:
        assert seen["text"] == "my card is [card number]"


# -- output --------------------------------------------------------------------------------

@pytest.mark.parametrize("consumer_delay", [0.0, 0.01])
async def test_filter_masks_the_reply_and_nothing_unmasked_is_ever_shown(guardian,
                                                                         consumer_delay):
    results = await collect(make_engine(guardian, ScriptedReply()), ask(), consumer_delay)
    assert results[-1].ok and results[-1].text == MASKED
    assert_nothing_unmasked(results)
    check_text_grows(results, Capability.LLM)
    partials = [r for r in results if r.partial]
    assert partials, "checked sentences are released before the reply ends"
    assert "".join(r.outputs["delta"] for r in partials) + results[-1].outputs["delta"] == MASKED
    info = results[-1].metadata["guardian_output"]
    assert info["action"] == "filtered"
    assert {i["type"] for i in info["issues"]} == {"card_number", "email"}


async def test_paced_partials_do_not_hold_back_the_first_filtered_words(guardian):
    """The filter shows a word once the next piece of the reply comes: that piece must be
    read at once, not a pacing interval after the first."""
    llm = ScriptedReply("Once upon a time there was a dragon. " * 10, chunk=3, delay_s=0.02)
    engine = Engine(Registry([guardian, llm]), EngineSettings(
        guard=make_guard(GuardianSettings()), emit_interval_ms=2000))
    async for result in engine.submit(ask()):
        if result.text:
            pieces_read = llm.pieces
            break
    assert pieces_read <= 10  # paced from the start, the first word would wait for ~100


async def test_block_on_output_stops_the_model_and_keeps_what_was_shown(guardian):
    reply = f"Hello there. My card is {CARD}. " + "More words follow here. " * 400
    llm = ScriptedReply(reply, chunk=4, delay_s=0.001)
    engine = make_engine(guardian, llm, output=Checkpoint(Strategy.BLOCK, ("personal_data",)))
    results = await collect(engine, ask())
    terminal = results[-1]
    assert terminal.error is not None and terminal.error.code == "G100"
    assert "a card number in the reply" in terminal.error.message
    assert terminal.text == "Hello there. My card is "
    assert all(terminal.text.startswith(r.text) for r in results[:-1])
    assert len(results) > 3, "the text before the card streamed word by word"
    assert_nothing_unmasked(results)
    stopped_at = llm.pieces
    await asyncio.sleep(0.2)
    assert llm.pieces == stopped_at < len(reply) // 4 // 2, "the model kept generating"
    assert terminal.metadata["guardian_output"]["action"] == "blocked"


async def test_warn_on_output_shows_the_reply_as_it_comes_and_reports(guardian):
    engine = make_engine(guardian, ScriptedReply(delay_s=0.002),
                         output=Checkpoint(Strategy.WARN, ("personal_data",)))
    results = await collect(engine, ask())
    assert results[-1].ok and results[-1].text == REPLY
    assert results[0].text == REPLY[:3]  # nothing is held back
    info = results[-1].metadata["guardian_output"]
    assert info["action"] == "warned" and info["status"] == "unsafe"
    spans = {i["type"]: REPLY[slice(*i["span"])] for i in info["issues"]}
    assert spans == {"card_number": CARD, "email": MAIL}


async def test_cancel_mid_reply_ends_with_filtered_text_only(guardian):
    reply = f"My card is {CARD}. " + "And then the story goes on and on. " * 300
    engine = make_engine(guardian, ScriptedReply(reply, chunk=5, delay_s=0.001))
    handle = engine.submit(ask())
    results = []
    async for result in handle:
        results.append(result)
        handle.cancel()
    assert results[-1].metadata["finish_reason"] == "cancelled"
    assert reply.replace(CARD, "[card number]").startswith(results[-1].text)
    assert_nothing_unmasked(results)


@pytest.mark.parametrize("cut", range(12, 30))
async def test_a_reply_cut_inside_a_number_never_shows_its_digits(guardian, cut):
    reply = f"Card: {CARD} ok"
    llm = ScriptedReply(reply[:cut], chunk=2, finish="length")
    results = await collect(make_engine(guardian, llm), ask())
    assert results[-1].ok
    assert results[-1].text == ("Card: [card number] " if cut > len("Card: " + CARD) + 1
                                else "Card: ")
    assert_nothing_unmasked(results)


async def test_a_long_unfinished_sentence_is_released_in_parts_without_splitting_data(guardian):
    words = "and the list of things we need goes on with more plain words "
    reply = words * 8 + f"then pay with {CARD} and " + words * 8 + "done"
    results = await collect(make_engine(guardian, ScriptedReply(reply, chunk=7)), ask())
    assert any(r.partial for r in results), "a sentence with no end is not held forever"
    assert results[-1].text == reply.replace(CARD, "[card number]")
    assert_nothing_unmasked(results)
    check_text_grows(results, Capability.LLM)


# -- failures of the guardian itself -------------------------------------------------------

@pytest.mark.parametrize(("guardian_kind", "code"), [("missing", "E405"), ("broken", "E101")])
async def test_a_failed_input_check_blocks_when_closed(guardian_kind, code):
    llm = ScriptedLLM()
    engine = make_engine(None if guardian_kind == "missing" else BrokenGuardian(), llm)
    [terminal] = await collect(engine, ask("hello"))
    assert terminal.error is not None and terminal.error.code == "G100"
    assert f"could not check the prompt ({code}" in terminal.error.message
    assert llm.loads == 0
    assert terminal.metadata["guardian_input"]["error"].startswith(code)


@pytest.mark.parametrize(("guardian_kind", "code"), [("missing", "E405"), ("broken", "E101")])
async def test_a_failed_input_check_lets_through_with_the_error_when_open(guardian_kind, code):
    engine = make_engine(None if guardian_kind == "missing" else BrokenGuardian(),
                         ScriptedLLM(), fail_closed=False, output=Checkpoint())
    results = await collect(engine, ask("hello", max_tokens=3))
    assert results[-1].ok and results[-1].text
    for result in results:
        info = result.metadata["guardian_input"]
        assert info["action"] == "unchecked" and info["error"].startswith(code)


async def test_a_failed_output_check_withholds_the_reply_when_closed():
    llm = ScriptedReply(REPLY + " " + "Another sentence here. " * 300, delay_s=0.001)
    engine = make_engine(BrokenGuardian(), llm, input=Checkpoint())
    results = await collect(engine, ask())
    terminal = results[-1]
    assert terminal.error is not None and terminal.error.code == "G100"
    assert "could not check the reply (E101" in terminal.error.message
    assert all(r.text == "" for r in results), "unchecked text was shown"
    stopped_at = llm.pieces
    await asyncio.sleep(0.2)
    assert llm.pieces == stopped_at, "the model kept generating"


async def test_a_failed_output_check_shows_the_reply_with_the_error_when_open():
    engine = make_engine(BrokenGuardian(), ScriptedReply(), input=Checkpoint(),
                         fail_closed=False)
    results = await collect(engine, ask())
    assert results[-1].ok and results[-1].text == REPLY
    info = results[-1].metadata["guardian_output"]
    assert info["action"] == "unchecked" and info["error"].startswith("E101")


# -- the real llama.cpp runner --------------------------------------------------------------

CONTACT_PROMPT = "Write an example contact card for John with an email address and a phone number."
GREEDY = {"temperature": 0.0, "max_tokens": 80}


@pytest.fixture(scope="module")
def llama():
    runner = LlamaCppRunner()
    yield runner
    runner.unload()


async def test_a_real_streamed_reply_is_filtered(guardian, llama):
    plain = Engine(Registry([llama]), EngineSettings(emit_interval_ms=0))
    # Both replies start from the same cache: a prompt found whole in the KV cache is computed
    # in other batches than a new one, and its greedy reply can differ
    await plain.run(ask("Hi", max_tokens=1))
    raw = (await plain.run(ask(CONTACT_PROMPT, **GREEDY))).text
    found = [raw[i.start:i.end] for i in find_personal_data(raw)]
    assert found, f"the model wrote no personal data this time: {raw!r}"
    await plain.run(ask("Hi", max_tokens=1))
    results = await collect(make_engine(guardian, llama), ask(CONTACT_PROMPT, **GREEDY))
    assert results[-1].ok
    check_text_grows(results, Capability.LLM)
    for result in results:
        assert not any(item in result.text for item in found), result.text
    assert find_personal_data(results[-1].text) == []
    assert re.search(r"\[(email|phone number)\]", results[-1].text)


async def test_a_real_llm_is_never_loaded_for_a_blocked_prompt(guardian):
    llm = LlamaCppRunner()
    [terminal] = await collect(make_engine(guardian, llm), ask("Shut up, you stupid bitch."))
    assert terminal.error is not None and terminal.error.code == "G100"
    assert llm.model_name is None  # nothing was loaded, nothing generated


# -- settings ------------------------------------------------------------------------------

def test_the_defaults():
    settings = GuardianSettings.default()
    assert settings.enabled and settings.strictness == "medium" and settings.fail_closed
    assert settings.input == Checkpoint(Strategy.BLOCK, ("offensive",))
    assert settings.output == Checkpoint(Strategy.FILTER, ("personal_data",))
    assert make_guard() is not None
    assert make_guard(GuardianSettings(enabled=False)) is None


def test_settings_round_trip_through_a_config_table():
    settings = GuardianSettings(strictness="high", input=Checkpoint(Strategy.WARN, (
        "offensive", "prompt_injection")), fail_closed=False, judge_model="smollm2-135m")
    assert GuardianSettings.from_mapping(settings.to_mapping()) == settings
    assert GuardianSettings.from_mapping({}) == GuardianSettings.default()


@pytest.mark.parametrize("table", [
    {"strictness": "extreme"}, {"input": "shout"}, {"output_checks": ["telepathy"]},
])
def test_bad_settings_are_e400(table):
    with pytest.raises(BreezeError) as caught:
        GuardianSettings.from_mapping(table)
    assert caught.value.error.code == "E400"


# -- masking stays exact however the reply is split into tokens ---------------------------

FRAGMENTS = [
    "Sure,", "here", "it is:", "the", "plan", "for 2024", "has 3 steps.", "Call", "me", "on",
    CARD, "5500-0000-0000-0004", MAIL, "ann.lee@mail.example.org", "DE89 3704 0044 0532 0130 00",
    "+1 415 555 0132", "sk-proj-abcdefghijklmnopqrstuvwx12", "(see page 12)", "1.5 km", "ok.",
    "\n", "Thanks!", "x4111", "12 34", "token: hunter2secret",
]


async def guarded(guardian: GuardianRunner, pieces: list[str]) -> list[InferenceResult]:
    """The reply as the output checkpoint releases it when the model writes `pieces` one
    result each (no engine between them to merge pieces)."""
    guard = make_guard(GuardianSettings())
    engine = Engine(Registry([guardian]), EngineSettings())

    async def reply():
        text = ""
        for piece in pieces:
            text += piece
            yield InferenceResult.success({"text": text, "delta": piece}, partial=True)
        yield InferenceResult.success({"text": text}, {"finish_reason": "stop"})

    try:
        stream = guard.guard_output(engine, ask(), reply(), CancelToken())
        return [result async for result in stream]
    finally:
        await engine.aclose()


def _secret_parts(text: str) -> list[str]:
    """Four-character runs of each sensitive span the checks find: none may be shown."""
    spans = [text[i.start:i.end] for i in find_personal_data(text)]
    return [span[at:at + 4] for span in spans for at in range(0, len(span) - 3, 2)
            if not span[at:at + 4].isspace()]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(words=st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=12),
       cuts=st.lists(st.integers(min_value=1, max_value=10_000), min_size=1, max_size=40))
def test_masking_is_the_same_however_the_reply_is_split(guardian, words, cuts):
    text = " ".join(words)
    points = sorted({c % len(text) for c in cuts} - {0})
    pieces = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]

    whole = asyncio.run(guarded(guardian, [text]))[-1].text
    streamed = asyncio.run(guarded(guardian, pieces))
    assert streamed[-1].text == whole
    secrets = [s for s in _secret_parts(text) if s not in whole]
    for result in streamed:
        assert whole.startswith(result.text)
        for secret in secrets:
            assert secret not in result.text, (secret, result.text, pieces)
