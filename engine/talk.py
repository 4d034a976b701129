"""A spoken conversation: Breeze listens, answers aloud, and stops when the user cuts in.

    talk = Talk(engine, frames, voice_activity, player, TalkSettings())
    async for event in talk:     # StateChanged, Heard, Replying, Speaking, Interrupted,
        ...                      # EchoIgnored, Problem, TurnDone, then TalkEnded
    talk.stop()                  # from any task or thread

`frames` is the microphone: PCM16 mono at `settings.rate`, with Breeze's own voice already
taken out by an echo canceller (runners.duplex). `voice_activity` cuts it into utterances:
speech held for its minimum (the barge-in hold) starts one, a pause of its minimum silence (the
end of a turn) ends it. The microphone is heard all the time, also while Breeze speaks:

- an utterance that ends is transcribed (an ASR request) and becomes the user's message; the
  reply streams and is spoken sentence by sentence (engine.speech);
- speech that starts while Breeze is thinking or speaking interrupts it: the voice stops, the
  reply is cancelled, and the conversation keeps only what was heard of it. Cut in before
  Breeze said anything, the first message and the new one are one turn;
- a transcript that repeats what Breeze was saying at the time is its own voice heard back
  (the echo canceller let some through): it is dropped.

The engine imports no audio or model library: the devices and the detector are injected.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ._channel import on_loop
from ._spoken import SpokenLog, Timeline
from ._talk_events import (
    HEARING,
    LISTENING,
    SPEAKING,
    STARTING,
    THINKING,
    EchoIgnored,
    Heard,
    Interrupted,
    Problem,
    Replying,
    Speaking,
    StateChanged,
    TalkEnded,
    TalkEvent,
    TurnDone,
    TurnMetrics,
    event_to_dict,
)
from .engine import Engine
from .errors import BreezeError, RunnerError
from .speech import (
    AudioSink,
    ReplyText,
    SentenceAudio,
    SentencePlaying,
    SpeakReply,
    SpeechDone,
    SpeechSettings,
    speak_reply,
)
from .types import Capability, InferenceRequest

__all__ = [
    "EchoIgnored",
    "Heard",
    "Interrupted",
    "Problem",
    "Replying",
    "Speaking",
    "StateChanged",
    "Talk",
    "TalkEnded",
    "TalkEvent",
    "TalkSettings",
    "TurnDone",
    "TurnMetrics",
    "Utterance",
    "VoiceActivity",
    "event_to_dict",
    "preload_talk",
]


class Utterance(Protocol):
    pcm: bytes

    @property
    def start_s(self) -> float: ...

    @property
    def end_s(self) -> float: ...


class VoiceActivity(Protocol):
    """Cuts audio into utterances (runners.duplex.voice_activity gives one)."""

    @property
    def in_speech(self) -> bool: ...

    @property
    def current(self) -> Utterance | None: ...

    @property
    def position_s(self) -> float: ...

    @property
    def pad_s(self) -> float: ...  # audio an utterance keeps around its speech

    def feed(self, pcm: bytes) -> list[Utterance]: ...


@dataclass(frozen=True, slots=True)
class TalkSettings:
    rate: int = 16000  # of the frames
    speech: SpeechSettings = field(default_factory=SpeechSettings)  # LLM and TTS runners
    llm_params: Mapping[str, Any] = field(default_factory=dict)
    asr_runner: str | None = None
    asr_params: Mapping[str, Any] = field(default_factory=dict)  # language, model
    partial_every_s: float = 1.0  # the utterance so far is transcribed this often; 0: never
    system_prompt: str | None = None


@dataclass(slots=True)
class _Turn:
    number: int
    speech_end_at: float  # perf_counter
    heard_from: float
    heard_to: float
    metrics: TurnMetrics = field(default_factory=TurnMetrics)
    user: str = ""
    speech: SpeakReply | None = None
    reply: str = ""
    timeline: Timeline = field(default_factory=Timeline)
    playing: tuple[str, float] | None = None  # the sentence playing, since when
    cut: bool = False  # the user spoke again before the turn was over
    typed: bool = False  # the user's words were written (Talk.ask)
    interrupted: Interrupted | None = None  # ... while Breeze was writing or speaking
    task: asyncio.Task[None] | None = None

    def mark(self, stage: str) -> None:
        if getattr(self.metrics, stage) is None:
            elapsed = round((time.perf_counter() - self.speech_end_at) * 1000.0, 1)
            self.metrics = replace(self.metrics, **{stage: elapsed})


class Talk:
    """One spoken conversation: an async iterator of TalkEvents, ending with TalkEnded."""

    def __init__(
        self,
        engine: Engine,
        frames: AsyncIterable[bytes],
        voice_activity: VoiceActivity,
        player: AudioSink,
        settings: TalkSettings | None = None,
        history: list[dict[str, str]] | None = None,
    ) -> None:
        self.engine = engine
        self.player = player
        self.settings = settings or TalkSettings()
        self.messages: list[dict[str, str]] = list(history or [])  # the conversation so far
        self.state = STARTING
        self._frames = frames
        self._vad = voice_activity
        self._loop = asyncio.get_running_loop()
        self._events: asyncio.Queue[TalkEvent] = asyncio.Queue()
        self._spoken = SpokenLog()
        self._turns = 0
        self._turn: _Turn | None = None  # being transcribed, written or spoken
        self._turn_tasks: set[asyncio.Task[None]] = set()  # every turn still running
        self._carried = ""  # a message whose reply the user cut off before it was heard
        self._hearing = False
        self._partial: asyncio.Task[None] | None = None
        self._last_partial_s = 0.0
        self._heard_at = (time.perf_counter(), 0.0)  # (perf_counter, stream seconds) of a frame
        self._ended: TalkEnded | None = None
        self._task = self._loop.create_task(self._listen())
        self._task.add_done_callback(self._stopped_before_start)

    def stop(self) -> None:
        """End the conversation: stop listening, speaking and writing (safe from any thread)."""
        if on_loop(self._loop):
            self._task.cancel()
        else:
            self._loop.call_soon_threadsafe(self._task.cancel)

    async def aclose(self) -> None:
        """Stop, and return once listening, speaking and writing have stopped."""
        self.stop()
        await asyncio.gather(self._task, return_exceptions=True)

    def __aiter__(self) -> AsyncIterator[TalkEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[TalkEvent]:
        try:
            while True:
                event = await self._events.get()
                yield event
                if isinstance(event, TalkEnded):
                    return
        finally:
            if self._ended is None:  # the consumer left early
                self.stop()

    # -- listening -----------------------------------------------------------------------

    async def _listen(self) -> None:
        ended = TalkEnded("stopped")
        try:
            async for pcm in self._frames:
                if self.state == STARTING:  # a device may start late: words said before are lost
                    self._set_state(LISTENING)
                self._hear(pcm)
        except asyncio.CancelledError:
            pass
        except BreezeError as exc:
            ended = TalkEnded("error", exc.error)
        finally:
            await self._wind_down()
            self._ended = ended
            self._emit(ended)

    def _stopped_before_start(self, task: asyncio.Task[None]) -> None:
        if self._ended is None:  # cancelled before its first step: `_listen` never ran
            self._ended = TalkEnded("stopped")
            self._emit(self._ended)

    def _hear(self, pcm: bytes) -> None:
        ended = self._vad.feed(pcm)
        self._heard_at = (time.perf_counter(), self._vad.position_s)
        for utterance in ended:
            self._hearing = False
            self._utterance_ended(utterance)
        current = self._vad.current
        if current is not None and not self._hearing:
            self._hearing = True
            self._last_partial_s = current.start_s
            self._onset(self._clock(current.start_s + self._vad.pad_s))
        if current is not None:
            self._maybe_partial(current)

    def _clock(self, stream_s: float) -> float:
        """The perf_counter time at which the microphone delivered stream second `stream_s`."""
        heard_at, position_s = self._heard_at
        return heard_at - (position_s - stream_s)

    def _onset(self, at: float) -> None:
        turn = self._turn
        if turn is not None and not turn.cut:
            turn.cut = True
            if turn.speech is not None:
                self._interrupt(turn, at)
        self._set_state(HEARING)

    def _maybe_partial(self, current: Utterance) -> None:
        every = self.settings.partial_every_s
        busy = self._turn is not None or (self._partial is not None and not self._partial.done())
        if not every or busy or current.end_s - self._last_partial_s < every:
            return
        self._last_partial_s = current.end_s
        number = self._turns + 1
        self._partial = self._loop.create_task(self._transcribe_partial(number, current.pcm))

    async def _transcribe_partial(self, number: int, pcm: bytes) -> None:
        text = await self._transcribe(pcm)
        if text and self._hearing and self._turns + 1 == number:
            self._emit(Heard(number, _joined(self._carried, text), final=False))

    def _utterance_ended(self, utterance: Utterance) -> None:
        if self._partial is not None:
            self._partial.cancel()
        speech_end = self._clock(utterance.end_s - self._vad.pad_s)
        self._start_turn(speech_end, self._clock(utterance.start_s), self._heard(utterance))

    def ask(self, text: str) -> None:
        """A typed message, answered aloud like a spoken one; a reply under way is cut off
        as by speech (call on the event loop)."""
        now = time.perf_counter()
        turn = self._turn
        if turn is not None and not turn.cut:
            turn.cut = True
            if turn.speech is not None:
                self._interrupt(turn, now)
        self._start_turn(now, now, self._typed(text), typed=True)

    def _start_turn(self, speech_end: float, heard_from: float,
                    words: Callable[[_Turn], Awaitable[str]], typed: bool = False) -> None:
        self._turns += 1
        turn = _Turn(self._turns, speech_end, heard_from, speech_end, typed=typed)
        turn.mark("end_of_turn_ms")
        earlier = [t for t in self._turn_tasks if not t.done()]
        self._turn = turn
        turn.task = self._loop.create_task(self._take_turn(turn, words, earlier))
        self._turn_tasks.add(turn.task)
        turn.task.add_done_callback(self._turn_tasks.discard)

    def _heard(self, utterance: Utterance) -> Callable[[_Turn], Awaitable[str]]:
        """The words of an utterance: its transcript, unless it is Breeze's own voice."""
        async def words(turn: _Turn) -> str:
            text = await self._transcribe(utterance.pcm)
            echo = self._spoken.echo_of(text, turn.heard_from, turn.heard_to)
            if echo is None:
                return text
            self._emit(EchoIgnored(text, echo))
            return ""

        return words

    @staticmethod
    def _typed(text: str) -> Callable[[_Turn], Awaitable[str]]:
        async def words(turn: _Turn) -> str:
            return text.strip()

        return words

    # -- a turn --------------------------------------------------------------------------

    async def _take_turn(self, turn: _Turn, words: Callable[[_Turn], Awaitable[str]],
                         earlier: list[asyncio.Task[None]]) -> None:
        self._set_state(THINKING)
        reason, error = "ignored", None
        try:
            text = await words(turn)
            turn.mark("transcript_ms")
            # the turns this one cut off end first: what they leave is what it follows
            await asyncio.gather(*earlier, return_exceptions=True)
            if turn.cut:  # the user went on speaking: one message with what comes next
                self._carried = _joined(self._carried, text)
                reason = "continued"
                return
            turn.user = _joined(self._carried, text)
            self._carried = ""
            if not turn.user:
                return
            self._emit(Heard(turn.number, turn.user, final=True, typed=turn.typed))
            reason, error = await self._reply(turn)
        finally:
            self._end_turn(turn, reason, error)

    async def _reply(self, turn: _Turn) -> tuple[str, RunnerError | None]:
        messages = self._conversation(turn.user)
        request = InferenceRequest({"messages": messages}, dict(self.settings.llm_params),
                                   capability=Capability.LLM)
        turn.speech = speak_reply(self.engine, request, self.player, self.settings.speech)
        done: SpeechDone | None = None
        async for event in turn.speech:
            if isinstance(event, ReplyText):
                turn.mark("first_token_ms")
                turn.reply = event.text
                if not turn.cut:
                    self._emit(Replying(turn.number, event.text, event.delta))
            elif isinstance(event, SentenceAudio):
                turn.mark("first_sentence_ms")
                turn.timeline.place(event.index, event.text, event.start_ms, event.end_ms)
            elif isinstance(event, SentencePlaying):
                turn.mark("first_audio_ms")
                self._sentence_playing(turn, event)
            elif isinstance(event, SpeechDone):
                done = event
        self._sentence_over(turn)
        assert done is not None
        if done.error is not None:
            self._emit(Problem(done.error))
        if turn.interrupted is None:
            return done.finish_reason, done.error
        if not turn.interrupted.spoken:  # nothing was heard: the message joins the next one
            return "continued", None
        return "interrupted", None

    def _conversation(self, user: str) -> list[dict[str, str]]:
        system = self.settings.system_prompt
        head = [{"role": "system", "content": system}] if system else []
        return [*head, *self.messages, {"role": "user", "content": user}]

    def _sentence_playing(self, turn: _Turn, event: SentencePlaying) -> None:
        self._sentence_over(turn)
        turn.playing = (event.text, time.perf_counter())
        if not turn.cut:
            self._set_state(SPEAKING)
            self._emit(Speaking(turn.number, event.index, event.text))

    def _sentence_over(self, turn: _Turn) -> None:
        if turn.playing is not None:
            text, started = turn.playing
            self._spoken.played(text, started, time.perf_counter())
            turn.playing = None

    def _interrupt(self, turn: _Turn, onset_at: float) -> None:
        """Stop the reply at once; what was heard of it stays, a message with nothing heard
        goes with the next one."""
        assert turn.speech is not None
        played_ms = self.player.played_ms
        turn.speech.cancel("interrupted: the user spoke")
        silent_at = time.perf_counter()
        spoke = turn.playing is not None
        self._sentence_over(turn)
        spoken, unspoken = turn.timeline.split(turn.reply, played_ms)
        if not spoken:
            self._carried = _joined(turn.user, self._carried)
        barge_in_ms = round((silent_at - onset_at) * 1000.0, 1) if spoke or spoken else None
        turn.interrupted = Interrupted(turn.number, spoken, unspoken, barge_in_ms)
        self._emit(turn.interrupted)

    def _end_turn(self, turn: _Turn, reason: str, error: RunnerError | None) -> None:
        """TurnDone; a turn that stands (not "continued" or "ignored") joins `messages`."""
        reply = turn.interrupted.spoken if turn.interrupted is not None else turn.reply
        stands = reason in ("stop", "length", "interrupted") and turn.user and reply
        if stands:
            self.messages += [{"role": "user", "content": turn.user},
                              {"role": "assistant", "content": reply}]
        if self._turn is turn:
            self._turn = None
            if not self._hearing:
                self._set_state(LISTENING)
        self._emit(TurnDone(turn.number, turn.user, reply, reason, turn.metrics, error))

    # -- shared --------------------------------------------------------------------------

    async def _transcribe(self, pcm: bytes) -> str:
        # one decode of the whole utterance: the loop shows its own partials
        params = {"stream_mode": "sentence", **self.settings.asr_params,
                  "sample_rate": self.settings.rate}
        request = InferenceRequest({"audio": pcm}, params, capability=Capability.ASR)
        result = await self.engine.run(request, runner=self.settings.asr_runner)
        if result.error is not None:
            self._emit(Problem(result.error))
            return ""
        return result.text.strip()

    async def _wind_down(self) -> None:
        tasks = [t for t in (self._partial, *self._turn_tasks) if t]
        if self._turn is not None and self._turn.speech is not None:
            self._turn.speech.cancel("the conversation ended")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.player.cancel()

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self._emit(StateChanged(state))

    def _emit(self, event: TalkEvent) -> None:
        self._events.put_nowait(event)


async def preload_talk(engine: Engine, settings: TalkSettings) -> None:
    """Load the recognizer, the LLM and the voice a conversation uses, all at once, so that
    its first turn waits for none of them. BreezeError when one cannot load."""
    speech = settings.speech
    loaded = await asyncio.gather(  # each to its end: a load cannot be stopped half-way
        engine.preload(Capability.LLM, runner=speech.llm_runner, params=settings.llm_params),
        engine.preload(Capability.ASR, runner=settings.asr_runner, params=settings.asr_params),
        engine.preload(Capability.TTS, runner=speech.tts_runner, params=speech.tts_params),
        return_exceptions=True,
    )
    for outcome in loaded:
        if isinstance(outcome, BaseException):
            raise outcome


def _joined(*parts: str) -> str:
    return " ".join(p.strip() for p in parts if p.strip())
