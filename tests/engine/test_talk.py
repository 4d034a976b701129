"""The turn-taking loop (engine.talk) with scripted parts: a microphone that says what the
test tells it, a detector that reads those frames, scripted LLM / ASR / TTS runners and a
player whose timeline runs in real time. The real devices, models and echo canceller are in
tests/e2e/test_talk_cli.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from breeze.engine import (
    BreezeError,
    CancelToken,
    Capability,
    Engine,
    EngineSettings,
    InferenceRequest,
    InferenceResult,
    ParamSchema,
    ParamSpec,
    Registry,
    Runner,
)
from breeze.engine._spoken import SpokenLog, Timeline
from breeze.engine.talk import (
    EchoIgnored,
    Heard,
    Interrupted,
    Problem,
    Replying,
    Speaking,
    StateChanged,
    Talk,
    TalkEnded,
    TalkEvent,
    TalkSettings,
    TurnDone,
    event_to_dict,
)

FRAME_S = 0.02
WORD_S = 0.08  # of synthesized audio
REPLY = "The first sentence is here. The second one follows it. A third ends the reply."


# -- scripted parts -------------------------------------------------------------------


class Mic:
    """Frames in real time: b"." is silence, b"S<text>" a frame of someone saying <text>."""

    def __init__(self) -> None:
        self._script: list[bytes] = []
        self.failure: BreezeError | None = None

    def say(self, text: str, seconds: float = 0.4) -> None:
        self._script += [b"S" + text.encode()] * round(seconds / FRAME_S)

    async def frames(self) -> AsyncIterator[bytes]:
        while True:
            await asyncio.sleep(FRAME_S)
            if self.failure is not None:
                raise self.failure
            yield self._script.pop(0) if self._script else b"."


@dataclass(frozen=True)
class Said:
    pcm: bytes
    start_s: float
    end_s: float


class Detector:
    """Speech held 3 frames is speech; 8 frames of silence end it."""

    pad_s = 0.0

    def __init__(self) -> None:
        self.position_s = 0.0
        self._start = 0.0
        self._frames = 0
        self._silence = 0
        self._text = ""

    @property
    def in_speech(self) -> bool:
        return self._frames >= 3

    @property
    def current(self) -> Said | None:
        return Said(self._text.encode(), self._start, self.position_s) if self.in_speech else None

    def feed(self, pcm: bytes) -> list[Said]:
        self.position_s += FRAME_S
        if pcm.startswith(b"S"):
            if not self._frames:
                self._start = self.position_s - FRAME_S
            text = pcm[1:].decode()
            if not self._text.endswith(text):
                self._text = f"{self._text} {text}".strip()
            self._frames += 1
            self._silence = 0
            return []
        if not self._frames:
            return []
        self._silence += 1
        if self._silence < 8:
            return []
        ended = Said(self._text.encode(), self._start, self.position_s - 8 * FRAME_S)
        self._frames, self._silence, self._text = 0, 0, ""
        return [ended] if ended.end_s - ended.start_s >= 3 * FRAME_S else []


class Llm(Runner):
    name = "talk-llm"
    capabilities = frozenset({Capability.LLM})

    def __init__(self) -> None:
        self.conversations: list[list[dict[str, str]]] = []
        self.first_token_delay_s = 0.05
        self.reply = REPLY

    def param_schema(self) -> ParamSchema:
        return ParamSchema([ParamSpec("temperature", float, None)])

    async def stream(self, request: InferenceRequest,
                     token: CancelToken) -> AsyncIterator[InferenceResult]:
        self.conversations.append(list(request.inputs["messages"]))
        await asyncio.sleep(self.first_token_delay_s)
        text = ""
        for word in self.reply.split(" "):
            if token.cancelled:
                break
            delta = (" " if text else "") + word
            text += delta
            yield InferenceResult.success({"text": text, "delta": delta}, partial=True)
            await asyncio.sleep(0.005)
        reason = "cancelled" if token.cancelled else "stop"
        yield InferenceResult.success({"text": text}, {"finish_reason": reason})


class Asr(Runner):
    """The 'audio' is the text said; "broken" fails."""

    name = "talk-asr"
    capabilities = frozenset({Capability.ASR})

    def param_schema(self) -> ParamSchema:
        return ParamSchema([ParamSpec("sample_rate", int, None), ParamSpec("language", str, None),
                            ParamSpec("stream_mode", str, None)])

    async def stream(self, request: InferenceRequest,
                     token: CancelToken) -> AsyncIterator[InferenceResult]:
        text = bytes(request.inputs["audio"]).decode()
        await asyncio.sleep(0.02)
        if text == "broken":
            raise BreezeError("E101", "the recognizer failed")
        yield InferenceResult.success({"text": text}, {"finish_reason": "stop"})


class Tts(Runner):
    name = "talk-tts"
    capabilities = frozenset({Capability.TTS})

    async def stream(self, request: InferenceRequest,
                     token: CancelToken) -> AsyncIterator[InferenceResult]:
        words = len(str(request.inputs["text"]).split())
        audio = bytes(2 * int(16000 * WORD_S * words))
        yield InferenceResult.success({"audio": audio, "sample_rate": 16000},
                                      {"finish_reason": "stop"})


@dataclass(frozen=True)
class Placed:
    start_ms: float
    end_ms: float


class Player:
    """A timeline that plays in real time."""

    def __init__(self) -> None:
        self.queued_ms = 0.0
        self._base_ms = 0.0
        self._since = time.perf_counter()
        self.cancels = 0

    @property
    def played_ms(self) -> float:
        elapsed = (time.perf_counter() - self._since) * 1000.0
        return min(self.queued_ms, self._base_ms + elapsed)

    def play(self, pcm: bytes, sample_rate: int | None = None, channels: int = 1,
             mark: object = None) -> Placed:
        if self.played_ms >= self.queued_ms:  # idle: playback starts now
            self._base_ms, self._since = self.queued_ms, time.perf_counter()
        start = self.queued_ms
        self.queued_ms += 1000.0 * len(pcm) / 2 / (sample_rate or 16000)
        return Placed(start, self.queued_ms)

    def cancel(self) -> None:
        self.cancels += 1
        self.queued_ms = self._base_ms = self.played_ms
        self._since = time.perf_counter()

    async def drain(self) -> None:  # nothing is queued once the speech pipeline drains
        await asyncio.sleep(max(0.0, self.queued_ms - self.played_ms) / 1000.0)


@dataclass
class Setup:
    talk: Talk
    mic: Mic
    llm: Llm
    player: Player
    events: list[TalkEvent]
    arrived: asyncio.Condition

    async def until(self, test, within: float = 10.0) -> TalkEvent:
        """The first event (seen or to come) that passes `test`."""
        def found() -> TalkEvent | None:
            return next((e for e in self.events if test(e)), None)

        try:
            async with asyncio.timeout(within), self.arrived:
                await self.arrived.wait_for(lambda: found() is not None)
        except TimeoutError:
            raise AssertionError(f"no such event in {self.events}") from None
        event = found()
        assert event is not None
        return event

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
async def setup():
    llm = Llm()
    engine = Engine(Registry([llm, Asr(), Tts()]), EngineSettings(emit_interval_ms=0))
    mic, player = Mic(), Player()
    talk = Talk(engine, mic.frames(), Detector(), player, TalkSettings(partial_every_s=0.1))
    events: list[TalkEvent] = []
    arrived = asyncio.Condition()

    async def collect() -> None:
        async for event in talk:
            async with arrived:
                events.append(event)
                arrived.notify_all()

    collector = asyncio.create_task(collect())
    yield Setup(talk, mic, llm, player, events, arrived)
    await talk.aclose()
    await collector
    await engine.aclose()


def turn_done(number: int):
    return lambda e: isinstance(e, TurnDone) and e.turn == number


# -- the loop -------------------------------------------------------------------------


async def test_a_spoken_question_is_answered_aloud_with_each_stage_timed(setup):
    setup.mic.say("what is the capital of france", 0.5)
    done = await setup.until(turn_done(1))
    assert done.finish_reason == "stop" and done.user == "what is the capital of france"
    assert done.reply == REPLY
    assert setup.llm.conversations == [[{"role": "user", "content": done.user}]]
    assert setup.talk.messages == [{"role": "user", "content": done.user},
                                   {"role": "assistant", "content": REPLY}]
    spoken = [e.text for e in setup.of(Speaking)]
    assert spoken == ["The first sentence is here.", "The second one follows it.",
                      "A third ends the reply."]
    m = done.metrics
    stages = [m.end_of_turn_ms, m.transcript_ms, m.first_token_ms, m.first_sentence_ms,
              m.first_audio_ms]
    assert all(s is not None for s in stages) and stages == sorted(stages), stages
    assert m.end_of_turn_ms >= 8 * FRAME_S * 1000 * 0.9  # the pause that ended the turn
    states = [e.state for e in setup.of(StateChanged)]
    assert states[:5] == ["listening", "hearing", "thinking", "speaking", "listening"], states
    assert any(not e.final for e in setup.of(Heard)), "no partial while the user spoke"
    assert setup.of(Replying)[-1].text == REPLY


async def test_speaking_over_breeze_stops_it_and_keeps_only_what_was_heard(setup):
    setup.mic.say("tell me something", 0.3)
    await setup.until(lambda e: isinstance(e, Speaking) and e.index == 1)
    await asyncio.sleep(2 * WORD_S)  # two words into the second sentence
    setup.mic.say("wait a moment", 0.4)
    interrupted = await setup.until(lambda e: isinstance(e, Interrupted))
    assert interrupted.spoken.startswith("The first sentence is here. The second")
    assert interrupted.spoken.endswith("…") and "third" not in interrupted.spoken
    assert interrupted.unspoken.endswith("A third ends the reply.")
    assert interrupted.barge_in_ms is not None and interrupted.barge_in_ms < 500
    assert setup.player.queued_ms == pytest.approx(setup.player.played_ms, abs=1.0)
    first = await setup.until(turn_done(1))
    assert first.finish_reason == "interrupted" and first.reply == interrupted.spoken
    second = await setup.until(turn_done(2))
    assert second.user == "wait a moment" and second.finish_reason == "stop"
    assert setup.llm.conversations[1] == [
        {"role": "user", "content": "tell me something"},
        {"role": "assistant", "content": interrupted.spoken},
        {"role": "user", "content": "wait a moment"},
    ]
    assert not [e for e in setup.of(Speaking) if e.turn == 1 and e.index == 2]


async def test_going_on_before_breeze_has_spoken_makes_one_message(setup):
    setup.llm.first_token_delay_s = 1.0
    setup.mic.say("what is", 0.3)
    await setup.until(lambda e: isinstance(e, StateChanged) and e.state == "thinking")
    await asyncio.sleep(0.2)  # the reply is being written
    setup.mic.say("the time", 0.3)
    first = await setup.until(turn_done(1))
    assert first.finish_reason == "continued" and first.reply == ""
    interrupted = setup.of(Interrupted)
    assert [i.spoken for i in interrupted] == [""] and interrupted[0].barge_in_ms is None
    setup.llm.first_token_delay_s = 0.0
    second = await setup.until(turn_done(2))
    assert second.user == "what is the time" and second.finish_reason == "stop"
    assert setup.llm.conversations[-1] == [{"role": "user", "content": "what is the time"}]
    assert [e.text for e in setup.of(Heard) if e.final] == ["what is", "what is the time"]


async def test_a_typed_message_cuts_in_and_is_answered_aloud(setup):
    setup.mic.say("tell me something", 0.3)
    await setup.until(lambda e: isinstance(e, Speaking) and e.index == 1)
    setup.talk.ask("  And now in French?  ")
    interrupted = await setup.until(lambda e: isinstance(e, Interrupted))
    assert interrupted.spoken.startswith("The first sentence is here.")
    second = await setup.until(turn_done(2))
    assert second.user == "And now in French?" and second.finish_reason == "stop"
    heard = [e for e in setup.of(Heard) if e.final]
    assert [(e.text, e.typed) for e in heard] == [("tell me something", False),
                                                  ("And now in French?", True)]
    assert setup.llm.conversations[1][-1] == {"role": "user", "content": "And now in French?"}


async def test_breeze_hearing_its_own_last_sentence_ignores_it(setup):
    setup.llm.reply = "Paris is the capital."
    setup.mic.say("capital of france", 0.3)
    await setup.until(turn_done(1))
    setup.mic.say("paris is the capital", 0.3)  # the room's echo, heard late
    done = await setup.until(turn_done(2))
    assert done.finish_reason == "ignored" and done.user == ""
    echo = setup.of(EchoIgnored)
    assert [e.text for e in echo] == ["paris is the capital"]
    assert len(setup.llm.conversations) == 1
    setup.mic.say("and of spain", 0.3)  # the user's own words are not an echo
    assert (await setup.until(turn_done(3))).finish_reason == "stop"


async def test_a_failed_transcription_is_a_problem_and_the_talk_goes_on(setup):
    setup.mic.say("broken", 0.3)
    problem = await setup.until(lambda e: isinstance(e, Problem))
    assert problem.error.code == "E101"
    assert (await setup.until(turn_done(1))).finish_reason == "ignored"
    setup.mic.say("hello", 0.3)
    assert (await setup.until(turn_done(2))).finish_reason == "stop"


async def test_stopping_ends_with_talk_ended_and_silences_the_player(setup):
    setup.mic.say("tell me something", 0.3)
    await setup.until(lambda e: isinstance(e, Speaking))
    cancels = setup.player.cancels
    await setup.talk.aclose()
    ended = await setup.until(lambda e: isinstance(e, TalkEnded))
    assert ended.reason == "stopped" and ended.error is None
    assert setup.player.cancels > cancels
    assert setup.player.queued_ms == pytest.approx(setup.player.played_ms, abs=1.0)
    assert event_to_dict(ended) == {"event": "end", "reason": "stopped", "error": None}


async def test_stopped_as_soon_as_it_is_made_it_still_ends_with_talk_ended():
    engine = Engine(Registry([Llm(), Asr(), Tts()]), EngineSettings())
    talk = Talk(engine, Mic().frames(), Detector(), Player())
    talk.stop()
    async with asyncio.timeout(10):
        events = [event async for event in talk]
    assert [type(e) for e in events] == [TalkEnded] and events[0].reason == "stopped"
    await engine.aclose()


async def test_a_microphone_that_fails_ends_the_talk_with_its_error(setup):
    setup.mic.failure = BreezeError("E501", "the microphone went away")
    ended = await setup.until(lambda e: isinstance(e, TalkEnded))
    assert ended.reason == "error" and ended.error.code == "E501"


def test_events_are_json_ready():
    done = TurnDone(3, "hi", "hello", "stop", setup_metrics())
    data = event_to_dict(done)
    assert data["event"] == "turn" and data["metrics"]["first_audio_ms"] == 900.0
    assert done.metrics.line() == ("end of turn 600 ms · transcript 700 ms · first token "
                                   "800 ms · first sentence 850 ms · voice 900 ms")


def setup_metrics():
    from breeze.engine.talk import TurnMetrics

    return TurnMetrics(600.0, 700.0, 800.0, 850.0, 900.0)


# -- what was spoken ------------------------------------------------------------------


def test_a_reply_is_cut_at_the_share_of_the_sentence_that_played():
    timeline = Timeline()
    reply = "One two three four.\nFive six seven eight. Nine ten."
    timeline.place(0, "One two three four.", 0.0, 1000.0)
    timeline.place(1, "Five six seven eight.", 1000.0, 1500.0)
    timeline.place(1, "Five six seven eight.", 1500.0, 2000.0)  # a second chunk
    timeline.place(2, "Nine ten.", 2000.0, 2500.0)
    assert timeline.split(reply, 1500.0) == ("One two three four.\nFive six…",
                                             "seven eight. Nine ten.")
    assert timeline.split(reply, 2500.0) == (reply, "")
    assert timeline.split(reply, 1990.0) == ("One two three four.\nFive six seven eight.",
                                             "Nine ten.")  # its last word was under way
    assert timeline.split(reply, 0.0) == ("", reply)


def test_only_what_breeze_was_saying_then_counts_as_an_echo():
    log = SpokenLog()
    log.played("The capital of France is Paris.", 10.0, 12.0)
    log.played("It is on the Seine.", 12.0, 13.5)
    assert log.echo_of("the capital of france is", 10.5, 11.8) is not None
    assert log.echo_of("paris it is on the", 11.5, 13.0) is not None  # across two sentences
    assert log.echo_of("what about the capital of spain", 11.0, 12.5) is None
    assert log.echo_of("the capital of france is", 20.0, 21.0) is None  # long after
    assert log.echo_of("it is on the seine", 14.0, 15.0) is not None  # its reverberation
    log.stopped_at(12.5)  # the sentence was cut short: it stopped sounding sooner
    assert log.echo_of("it is on the seine", 14.0, 15.0) is None
