"""Speaking a streaming reply: the real llama.cpp LLM, real espeak-ng, a real (null) speaker."""

from __future__ import annotations

import asyncio
import time

import pytest

from breeze.engine import Engine, EngineSettings, InferenceRequest, Registry
from breeze.engine.speech import (
    ReplyDone,
    ReplyText,
    SentenceAudio,
    SentencePlaying,
    SpeechDone,
    SpeechSettings,
    speak_reply,
)
from breeze.engine.text import split_sentences
from breeze.runners.audio_out import Player
from breeze.runners.llama_cpp import LlamaCppRunner
from breeze.runners.pyttsx3_tts import Pyttsx3Runner
from tests.contract.scripted import ScriptedLLM
from tests.runners.test_audio_out import MonitorRecorder, tts_sink, warm  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("tts_sink")


@pytest.fixture(scope="module")
def llm():
    runner = LlamaCppRunner()
    yield runner
    runner.unload()


@pytest.fixture(scope="module")
def tts():
    runner = Pyttsx3Runner()
    runner.load(runner.param_schema().validate({}))  # its worker is up, as in the app
    yield runner
    runner.unload()


@pytest.fixture
def engine(llm, tts):
    return Engine(Registry([llm, tts]))


@pytest.fixture
def player():
    with Player("pulse") as player:
        yield warm(player)


def ask(text: str, max_tokens: int) -> InferenceRequest:
    return InferenceRequest({"text": text}, {"temperature": 0.0, "max_tokens": max_tokens})


async def test_speech_starts_before_the_reply_ends_and_says_all_of_it(engine, player):
    speech = speak_reply(engine, ask("Tell me a short story about a cat.", 60), player)
    events = [event async for event in speech]
    done = events[-1]
    assert isinstance(done, SpeechDone) and done.error is None
    assert done.finish_reason in ("stop", "length")
    assert done.first_audio_ms < done.reply_ms, "speech waited for the whole reply"
    queued_at = speech.started_at + done.first_audio_ms / 1000
    assert player.first_sample_at is not None
    assert player.first_sample_at - queued_at < 0.5, "the speaker started late"
    reply = done.reply.text
    spoken = list(dict.fromkeys(e.text for e in events if isinstance(e, SentenceAudio)))
    assert spoken == [s.text for s in split_sentences(reply, 200)], "not all of it was said"
    playing = [e.index for e in events if isinstance(e, SentencePlaying)]
    assert playing == list(range(len(spoken))) and done.sentences == len(spoken)
    texts = [e.text for e in events if isinstance(e, ReplyText)]
    assert texts[-1] == reply
    reply_done = [e for e in events if isinstance(e, ReplyDone)]
    assert len(reply_done) == 1 and reply_done[0].result is done.reply
    assert events.index(reply_done[0]) > max(i for i, e in enumerate(events)
                                             if isinstance(e, ReplyText))
    assert all(b.startswith(a) for a, b in zip(texts, texts[1:], strict=False))
    assert player.pending_ms == 0  # SpeechDone comes after the sound


async def test_cancel_stops_the_reply_the_synthesis_and_the_sound(engine, llm, tts, player):
    with MonitorRecorder() as recorder:
        # a reply far longer than the test: still being written when it is cancelled
        speech = speak_reply(engine, ask("Write a long story about the sea.", 3000), player)
        first_start = None
        async for event in speech:
            if isinstance(event, SentenceAudio) and first_start is None:
                first_start = event.start_ms
            if isinstance(event, SentencePlaying) and player.played_ms > first_start + 1500:
                heard_ms = player.played_ms - first_start
                cancelled_at = time.perf_counter()
                speech.cancel()
                queued, synthesized = player.queued_ms, tts.samples_synthesized
        done = speech.done
        assert done is not None and done.finish_reason == "cancelled"
        assert time.perf_counter() - cancelled_at < 1.5
        assert done.reply.metadata["finish_reason"] == "cancelled"
        kv_tokens = llm._llm.n_tokens
        await asyncio.sleep(0.5)
        assert llm._llm.n_tokens == kv_tokens, "the LLM went on after cancel"
        assert tts.samples_synthesized == synthesized, "synthesis went on after cancel"
        assert player.queued_ms == queued and player.pending_ms == 0
        recorder.wait_quiet()
    spans = recorder.spans(bridge_ms=1000)
    assert spans, "nothing was heard"
    heard = spans[-1][1] - spans[0][0]
    assert heard <= heard_ms + 60, f"{heard - heard_ms:.0f} ms of sound after the cancel"


async def test_a_synthesis_error_silences_the_speech_not_the_reply(engine, player):
    settings = SpeechSettings(tts_params={"voice": "no-such-voice"})
    speech = speak_reply(engine, ask("Tell me about the moon.", 60), player, settings)
    done = await speech.result()
    assert done.finish_reason == "error" and done.error is not None
    assert done.error.code == "E400" and "no-such-voice" in done.error.message
    assert done.reply.ok and done.reply.metadata["finish_reason"] in ("stop", "length")
    assert done.reply.metadata["tokens_generated"] > 10, "the reply was cut short"
    assert done.sentences == 0 and player.first_sample_at is None


async def test_silence_stops_the_sound_and_the_reply_goes_on(engine, player):
    speech = speak_reply(engine, ask("Write a long story about the sea.", 400), player)
    after: list = []
    silenced = False
    async for event in speech:
        if silenced:
            after.append(event)
        if isinstance(event, SentencePlaying) and not silenced:
            assert player.pending_ms > 0
            speech.silence()
            silenced = True
            assert player.pending_ms == 0, "the queued sound was not dropped"
    done = speech.done
    assert done.error is None and done.finish_reason in ("stop", "length")
    assert done.reply.metadata["tokens_generated"] > 60
    assert not any(isinstance(e, SentenceAudio) for e in after), "it went on speaking"
    assert any(isinstance(e, ReplyText) for e in after), "the reply stopped with the sound"


async def test_a_reply_that_fails_ends_with_its_error(engine, player):
    request = InferenceRequest({"text": "Hi."}, {"model": "/nonexistent/model.gguf"})
    done = await speak_reply(engine, request, player).result()
    assert done.finish_reason == "error" and done.error.code == "E501"
    assert done.sentences == 0 and player.first_sample_at is None


async def test_leaving_early_stops_everything(engine, llm, player):
    speech = speak_reply(engine, ask("Write a long story about a dragon.", 600), player)
    async for event in speech:
        if isinstance(event, SentenceAudio):
            break
    done = await asyncio.wait_for(speech.result(), 5)
    assert done.finish_reason == "cancelled" and done.reply.metadata["tokens_generated"] < 600
    assert player.pending_ms == 0


async def test_cancel_from_another_thread(engine, player):
    speech = speak_reply(engine, ask("Write a long story about a dragon.", 600), player)
    async for event in speech:
        if isinstance(event, SentenceAudio):
            await asyncio.to_thread(speech.cancel)
    assert speech.done is not None and speech.done.finish_reason == "cancelled"


async def test_a_long_sentence_is_spoken_clause_by_clause(tts, player):
    """An LLM that never ends a sentence (the scripted one: words, no punctuation) is still
    heard long before it finishes: the pipeline cuts its text at `max_sentence_chars`."""
    engine = Engine(Registry([ScriptedLLM(delay_s=0.02), tts]), EngineSettings())
    settings = SpeechSettings(max_sentence_chars=80)
    request = InferenceRequest({"text": "go"}, {"max_tokens": 150})  # three seconds of words
    speech = speak_reply(engine, request, player, settings)
    pieces: list[str] = []
    async for event in speech:
        if isinstance(event, SentenceAudio) and event.text not in pieces:
            pieces.append(event.text)
        if isinstance(event, SentencePlaying) and time.perf_counter() > speech.started_at + 4:
            speech.cancel()  # the reply has ended: no need to hear all of it
    done = speech.done
    assert done is not None and done.reply.metadata["finish_reason"] == "length"
    assert done.first_audio_ms < done.reply_ms / 4, "speech waited for the reply"
    assert all(len(p) <= 80 for p in pieces) and len(pieces) >= 5
