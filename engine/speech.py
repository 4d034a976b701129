"""Speaking a streaming LLM reply: its sentences go to speech synthesis as they are written.

    speech = speak_reply(engine, llm_request, player)
    async for event in speech:   # ReplyText (repeated), ReplyDone, SentenceAudio,
        ...                      # SentencePlaying (interleaved), then SpeechDone
    speech.cancel()              # from any task or thread: stops the reply, synthesis, sound

Two tasks run together. The reader takes the LLM's growing text and cuts off each sentence
as soon as it is complete (engine.text); the speaker turns each sentence into a TTS request
and queues its audio on the player chunk by chunk. The player plays while the speaker goes on,
so sentence i+1 is synthesized while sentence i plays and speech starts after the first
sentence, not after the whole reply. The player is injected (runners.audio_out.Player or
anything with the same methods): the engine imports no audio library.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._channel import on_loop
from .engine import Engine, Handle
from .errors import BreezeError, RunnerError
from .text import SentenceStream, has_speech
from .types import Capability, InferenceRequest, InferenceResult

__all__ = [
    "AudioSink",
    "ReplyDone",
    "ReplyText",
    "SentenceAudio",
    "SentencePlaying",
    "SpeakReply",
    "SpeechDone",
    "SpeechEvent",
    "SpeechSettings",
    "speak_reply",
]


class Placement(Protocol):
    start_ms: float
    end_ms: float


class AudioSink(Protocol):
    """What the pipeline needs from a player (runners.audio_out.Player has it)."""

    @property
    def played_ms(self) -> float: ...

    def play(self, pcm: bytes, sample_rate: int | None = None, channels: int = 1,
             mark: Any = None) -> Placement: ...

    def cancel(self) -> None: ...

    async def drain(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SpeechSettings:
    tts_params: Mapping[str, Any] = field(default_factory=dict)  # voice, rate, volume
    tts_runner: str | None = None
    llm_runner: str | None = None
    max_sentence_chars: int = 200  # a longer sentence is spoken clause by clause


@dataclass(frozen=True, slots=True)
class ReplyText:
    """The reply grew: `text` so far, `delta` new. `result` carried it: the terminal result
    itself when the end added text, which ReplyDone then brings again."""

    text: str
    delta: str
    result: InferenceResult


@dataclass(frozen=True, slots=True)
class ReplyDone:
    """The reply is written (its terminal result); its speech may still be playing."""

    result: InferenceResult


@dataclass(frozen=True, slots=True)
class SentenceAudio:
    """A chunk of a sentence's audio was queued on the player at [start_ms, end_ms)."""

    index: int
    text: str
    start_ms: float
    end_ms: float
    result: InferenceResult  # the TTS result, with its metadata


@dataclass(frozen=True, slots=True)
class SentencePlaying:
    """Playback reached sentence `index`."""

    index: int
    text: str


@dataclass(frozen=True, slots=True)
class SpeechDone:
    """The last event. finish_reason: the LLM's ("stop", "length"), "cancelled" or "error"."""

    finish_reason: str
    reply: InferenceResult | None  # the LLM's terminal result
    error: RunnerError | None
    sentences: int  # spoken (or started)
    first_audio_ms: float | None  # from the start to the first audio queued
    reply_ms: float | None  # from the start to the end of the LLM's reply


SpeechEvent = ReplyText | ReplyDone | SentenceAudio | SentencePlaying | SpeechDone


def speak_reply(
    engine: Engine,
    llm_request: InferenceRequest,
    player: AudioSink,
    settings: SpeechSettings | None = None,
) -> SpeakReply:
    """Start speaking the reply to `llm_request` (must be called on the event loop)."""
    return SpeakReply(engine, llm_request, player, settings or SpeechSettings())


class SpeakReply:
    """One spoken reply: an async iterator of SpeechEvents, ending with SpeechDone."""

    def __init__(
        self, engine: Engine, llm_request: InferenceRequest, player: AudioSink,
        settings: SpeechSettings,
    ) -> None:
        self.engine = engine
        self.player = player
        self.settings = settings
        self.done: SpeechDone | None = None
        self._loop = asyncio.get_running_loop()
        self.started_at = time.perf_counter()  # the event times are counted from here
        self._events: asyncio.Queue[SpeechEvent] = asyncio.Queue()
        self._sentences: asyncio.Queue[str | None] = asyncio.Queue()
        self._starts: asyncio.Queue[tuple[int, str, float] | None] = asyncio.Queue()
        self._cancelled = False  # everything stops
        self._silenced = False  # the speech stops; the reply is still read to its end
        self._error: RunnerError | None = None
        self._tts: Handle | None = None
        self._spoken = 0
        self._first_audio_ms: float | None = None
        self._reply: InferenceResult | None = None
        self._reply_ms: float | None = None
        self._llm = engine.submit(llm_request, runner=settings.llm_runner)
        self._task = self._loop.create_task(self._run())

    def cancel(self, reason: str = "cancelled by the user") -> None:
        """Stop the reply, the synthesis and the sound at once (safe from any thread)."""
        if on_loop(self._loop):
            self._stop(reason)
        else:
            self._loop.call_soon_threadsafe(self._stop, reason)

    def silence(self, reason: str = "speech turned off") -> None:
        """Stop the synthesis and the sound, and speak no more of this reply; the reply
        itself goes on to its end (safe from any thread)."""
        if on_loop(self._loop):
            self._silence(reason)
        else:
            self._loop.call_soon_threadsafe(self._silence, reason)

    def __aiter__(self) -> AsyncIterator[SpeechEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[SpeechEvent]:
        try:
            while True:
                event = await self._events.get()
                yield event
                if isinstance(event, SpeechDone):
                    return
        finally:
            if self.done is None:  # the consumer left early
                self._stop("the consumer left")

    async def result(self) -> SpeechDone:
        async for _ in self:
            pass
        assert self.done is not None
        return self.done

    # -- the pipeline --------------------------------------------------------------------

    def _stop(self, reason: str, error: RunnerError | None = None) -> None:
        if self._cancelled:
            return
        self._cancelled = True
        self._error = self._error or error
        self._llm.cancel(reason)
        self._end_sound(reason)
        self._sentences.put_nowait(None)  # wake the speaker

    def _silence(self, reason: str, error: RunnerError | None = None) -> None:
        """A speech failure does this too: the reply is not lost because it cannot be heard."""
        if self._silenced or self._cancelled:
            return
        self._silenced = True
        self._error = self._error or error
        self._end_sound(reason)

    def _end_sound(self, reason: str) -> None:
        if self._tts is not None:
            self._tts.cancel(reason)
        self.player.cancel()

    @property
    def _quiet(self) -> bool:
        return self._cancelled or self._silenced

    async def _run(self) -> None:
        watcher = self._loop.create_task(self._watch_playback())
        try:
            await asyncio.gather(self._read_reply(), self._speak())
            if not self._quiet:
                await self.player.drain()
        finally:
            self._starts.put_nowait(None)
            await watcher
            self._finish()

    async def _read_reply(self) -> None:
        shown = ""
        sentences = SentenceStream(self.settings.max_sentence_chars)
        async for result in self._llm:
            text = result.text if "text" in result.outputs else shown
            if len(text) > len(shown):
                self._events.put_nowait(ReplyText(text, text[len(shown):], result))
                shown = text
            if result.partial:
                complete = sentences.feed(text)
            else:  # the end: the rest is a sentence too, unless the reply broke off
                self._reply, self._reply_ms = result, self._ms()
                self._events.put_nowait(ReplyDone(result))
                broke_off = not result.ok or self._cancelled
                complete = [] if broke_off else sentences.finish(text)
            for sentence in complete:
                self._sentences.put_nowait(sentence)
        self._sentences.put_nowait(None)

    async def _speak(self) -> None:
        index = 0
        while (sentence := await self._sentences.get()) is not None and not self._cancelled:
            if has_speech(sentence) and not self._silenced:
                await self._speak_sentence(index, sentence)
                index += 1

    async def _speak_sentence(self, index: int, sentence: str) -> None:
        request = InferenceRequest(
            {"text": sentence}, dict(self.settings.tts_params), capability=Capability.TTS
        )
        self._tts = self.engine.submit(request, runner=self.settings.tts_runner)
        first = True
        async for result in self._tts:
            if result.error is not None:
                self._silence("speech synthesis failed", result.error)
            audio = result.outputs.get("audio")
            if self._quiet or not audio:
                continue
            try:
                placed = self.player.play(
                    audio, result.outputs.get("sample_rate"), result.outputs.get("channels", 1),
                    index,
                )
            except BreezeError as exc:  # the device went away (E501)
                self._silence("no audio output", exc.error)
                continue
            if first:
                first = False
                self._spoken += 1
                self._first_audio_ms = self._first_audio_ms or self._ms()
                self._starts.put_nowait((index, sentence, placed.start_ms))
            self._events.put_nowait(
                SentenceAudio(index, sentence, placed.start_ms, placed.end_ms, result)
            )

    async def _watch_playback(self) -> None:
        """SentencePlaying when playback reaches each sentence's first sample."""
        while (start := await self._starts.get()) is not None:
            index, text, start_ms = start
            while not self._quiet:
                ahead_ms = start_ms - self.player.played_ms
                if ahead_ms <= 0:
                    self._events.put_nowait(SentencePlaying(index, text))
                    break
                await asyncio.sleep(min(ahead_ms, 100.0) / 1000.0)

    def _finish(self) -> None:
        reply = self._reply
        if self._error is not None:
            reason = "error"
        elif self._cancelled:
            reason = "cancelled"
        elif reply is not None and reply.error is not None:
            reason, self._error = "error", reply.error
        else:
            reason = str(reply.metadata.get("finish_reason", "stop")) if reply else "stop"
        self.done = SpeechDone(
            reason, reply, self._error, self._spoken, self._first_audio_ms, self._reply_ms
        )
        self._events.put_nowait(self.done)

    def _ms(self) -> float:
        return round((time.perf_counter() - self.started_at) * 1000.0, 3)
