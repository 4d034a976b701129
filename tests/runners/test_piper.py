"""The Piper runner on the real en_US-joe-medium voice: results, metadata, voices, bad inputs,
cancel in the middle of a model run, and how it reports itself without the extra."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from breeze.engine import (
    Capability,
    Engine,
    EngineSettings,
    InferenceRequest,
    InferenceResult,
    Registry,
)
from breeze.engine.audio import dbfs
from breeze.engine.text import split_sentences
from breeze.runners import piper_tts
from breeze.runners.piper_tts import INSTALL_HINT, PiperRunner, VoiceCache
from breeze.runners.pyttsx3_tts import Pyttsx3Runner

from .test_pyttsx3 import KEY_WORDS, PARAGRAPH, SPOKEN, hear

RATE = 22050


@pytest.fixture(scope="session")
def voice_cache():
    return VoiceCache()


@pytest.fixture
def runner(voice_cache):
    return PiperRunner(cache=voice_cache)


@pytest.fixture
def engine(runner):
    return Engine(Registry([runner]))


def speak(text: str, **params) -> InferenceRequest:
    return InferenceRequest({"text": text}, params, capability=Capability.TTS)


async def collect(engine: Engine, request: InferenceRequest) -> list[InferenceResult]:
    return [r async for r in engine.submit(request)]


def audio_of(results: list[InferenceResult]) -> bytes:
    return b"".join(r.outputs["audio"] for r in results if r.ok)


async def test_results_carry_audio_and_the_metadata_of_the_design(engine):
    results = await collect(engine, speak(PARAGRAPH))
    partials, terminal = results[:-1], results[-1]
    assert len(partials) >= 5 and all(r.partial for r in partials) and not terminal.partial
    assert terminal.ok and terminal.metadata["finish_reason"] == "stop"
    assert terminal.outputs["audio"] == b""  # all audio is in the partials
    sentences = [s.text for s in split_sentences(PARAGRAPH)]
    total_ms = 0.0
    for i, r in enumerate(partials):
        out, meta = r.outputs, r.metadata
        assert isinstance(out["audio"], bytes) and len(out["audio"]) % 2 == 0 and out["audio"]
        assert (out["sample_rate"], out["channels"], out["chunk_index"]) == (RATE, 1, i)
        assert meta["total_sentences"] == 5
        assert meta["sentence_text"] == sentences[meta["sentence_index"]]
        assert meta["audio_duration_ms"] == pytest.approx(len(out["audio"]) / 2 / 22.05, abs=0.01)
        total_ms += meta["audio_duration_ms"]
        assert meta["cumulative_duration_ms"] == pytest.approx(total_ms, abs=0.01)
        assert meta["voice_used"] == "en_US-joe-medium"
        assert meta["quality_level"] == "medium"
        assert 0 < meta["synthesis_progress"] <= 100
    indexes = [r.metadata["sentence_index"] for r in partials]
    assert indexes == sorted(indexes) and set(indexes) == set(range(5))
    ends = [r for r in partials if r.metadata["sentence_end"]]
    assert [r.metadata["sentence_index"] for r in ends] == list(range(5))
    processed = [r.metadata["text_characters_processed"] for r in partials]
    assert processed == sorted(processed) and processed[-1] == len(PARAGRAPH)
    assert partials[-1].metadata["synthesis_progress"] == 100.0
    assert terminal.metadata["cumulative_duration_ms"] == pytest.approx(total_ms, abs=0.01)
    assert 5000 < total_ms < 20000  # five short sentences


async def test_a_long_sentence_arrives_in_chunks_of_half_a_second(engine):
    long_sentence = "This sentence goes on and on, " * 4 + "until it finally ends."
    results = await collect(engine, speak(long_sentence))
    chunks = [r for r in results if r.partial]
    assert len(chunks) > 3, "a long sentence arrives in several chunks"
    assert {r.metadata["sentence_index"] for r in chunks} <= {0, 1}  # cut at a clause
    assert all(250 <= r.metadata["audio_duration_ms"] <= 750 for r in chunks[:-1])


async def test_sentence_mode_gives_one_result_per_sentence(engine):
    results = await collect(engine, speak(PARAGRAPH, stream_mode="sentence"))
    assert [r.metadata.get("sentence_index") for r in results[:-1]] == [0, 1, 2, 3, 4]
    assert all(r.metadata["sentence_end"] for r in results[:-1])
    assert results[-1].ok and len(audio_of(results)) > 5 * RATE


async def test_spoken_words_are_recognized(engine):
    """The round trip: the neural voice, transcribed by pocketsphinx, has the key words."""
    heard = hear(audio_of(await collect(engine, speak(SPOKEN))), RATE).split()
    assert KEY_WORDS <= set(heard), heard


async def test_voices_by_id_name_language_and_path(engine, runner, tmp_path):
    voices = runner.voices()
    assert [v["id"] for v in voices] == ["en_US-joe-medium"]
    assert voices[0]["languages"] == ["en-us"] and "Joe" in voices[0]["name"]
    for voice in ("en_US-joe-medium", "joe", voices[0]["name"], "en", "en-US", "en_US"):
        results = await collect(engine, speak("Good morning.", voice=voice))
        assert results[-1].metadata["voice_used"] == "en_US-joe-medium", voice
    # a voice downloaded by hand: the model and its .json beside it
    model = tmp_path / "en_US-joe-medium.onnx"
    model.symlink_to(voices[0]["path"])
    (tmp_path / "en_US-joe-medium.onnx.json").symlink_to(voices[0]["path"] + ".json")
    results = await collect(engine, speak("Good morning.", voice=str(model)))
    assert results[-1].ok and audio_of(results)


async def test_rate_and_volume(engine):
    text = "Good morning to you all."
    normal = audio_of(await collect(engine, speak(text)))
    slow = audio_of(await collect(engine, speak(text, rate=90)))
    fast = audio_of(await collect(engine, speak(text, rate=350)))
    assert len(slow) > 1.5 * len(normal) > 2 * len(fast)
    quiet = audio_of(await collect(engine, speak(text, volume=0.2)))
    assert dbfs(quiet) < dbfs(normal) - 6


async def test_emoji_and_control_characters_are_spoken_or_skipped(engine):
    for text in ("I like 🍕 and 🎉.", "Line\x00one\x07 and\x1b[31m two\u202e."):
        results = await collect(engine, speak(text))
        assert results[-1].ok, (text, results[-1].error)
        assert len(audio_of(results)) > RATE // 2


@pytest.mark.parametrize(
    ("inputs", "params", "code", "says"),
    [
        ({"text": ""}, {}, "E400", "empty"),
        ({"text": "...!? -- ;"}, {}, "E400", "nothing to speak"),
        ({"text": "word " * 200_000}, {}, "E400", "too long"),
        ({"text": "Hi."}, {"voice": "no-such-voice"}, "E400", "en_US-joe-medium"),
        ({"text": "Hi."}, {"language": "ko"}, "E400", "language"),
        ({"text": "Hi."}, {"voice": "/nowhere/voice.onnx"}, "E501", "does not exist"),
        ({"text": "Hi."}, {"rate": 5}, "E400", "rate"),
        ({"text": "Hi."}, {"volume": 2.0}, "E400", "volume"),
    ],
    ids=["empty", "punctuation", "1MB", "voice", "language", "path", "rate", "volume"],
)
async def test_bad_inputs_are_errors_before_any_work(engine, runner, inputs, params, code, says):
    results = await collect(engine, InferenceRequest(inputs, params, capability=Capability.TTS))
    assert len(results) == 1 and results[0].error is not None
    assert results[0].error.code == code and says in results[0].error.message


async def test_a_corrupt_voice_file_is_e502(engine, runner, tmp_path):
    model = tmp_path / "broken.onnx"
    model.write_bytes(b"not a model")
    (tmp_path / "broken.onnx.json").symlink_to(runner.voices()[0]["path"] + ".json")
    results = await collect(engine, speak("Hi.", voice=str(model)))
    assert results[-1].error is not None and results[-1].error.code == "E502"


async def test_cancel_stops_the_model_run_in_progress(engine, runner):
    await collect(engine, speak("Warm up."))
    # one piece near the longest: its model run is what the cancel has to stop
    handle = engine.submit(speak(("A long clause that keeps going " * 5 + "and ends. ") * 20))
    results = []
    async for result in handle:
        results.append(result)
        if len(results) == 1:
            handle.cancel()
            synthesized = runner.samples_synthesized
    assert [r.partial for r in results] == [True, False], "audio came after the cancel"
    assert results[-1].metadata["finish_reason"] == "cancelled"
    await asyncio.sleep(0.3)
    assert runner.samples_synthesized == synthesized, "synthesis went on after cancel"
    again = await collect(engine, speak("Still working."))
    assert again[-1].ok and audio_of(again)


async def test_requests_at_the_same_time_each_get_their_own_audio(engine):
    texts = ["First request here.", "Second request here.", "Third request here."]
    runs = await asyncio.gather(*(collect(engine, speak(t)) for t in texts))
    for text, results in zip(texts, runs, strict=True):
        assert results[-1].ok and results[0].metadata["sentence_text"] == text


async def test_without_the_extra_it_is_unavailable_and_the_engine_falls_back(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "piper" else real_find_spec(name, *a))
    piper_tts._support.cache_clear()
    try:
        support = PiperRunner().is_supported()
        assert not support and INSTALL_HINT in support.reason
        engine = Engine(Registry([PiperRunner, Pyttsx3Runner]),
                        EngineSettings(preferred_runners={Capability.TTS: "piper"}))
        results = await collect(engine, speak("Hello."))
        meta = results[-1].metadata
        assert results[-1].ok and meta["runner_name"] == "pyttsx3"
        assert meta["fallback_from"] == ["piper"] and INSTALL_HINT in meta["fallback_reason"]
        await engine.aclose()
    finally:
        piper_tts._support.cache_clear()


class RecordingSink:
    """A player that keeps what it is given (engine.speech's AudioSink)."""

    def __init__(self) -> None:
        self.pieces: list[tuple[bytes, int | None]] = []
        self.queued_ms = 0.0

    @property
    def played_ms(self) -> float:
        return self.queued_ms

    def play(self, pcm, sample_rate=None, channels=1, mark=None):
        from breeze.runners.audio_out import Segment

        start = self.queued_ms
        self.queued_ms += 1000 * len(pcm) / 2 / (sample_rate or RATE)
        self.pieces.append((pcm, sample_rate))
        return Segment(start, self.queued_ms, mark)

    def cancel(self) -> None:
        pass

    async def drain(self) -> None:
        pass


async def test_a_streamed_reply_is_spoken_by_piper_through_engine_speech(runner):
    from breeze.engine.speech import SentenceAudio, SpeechDone, SpeechSettings, speak_reply
    from tests.contract.scripted import ScriptedLLM

    engine = Engine(Registry([ScriptedLLM(), runner]))
    sink = RecordingSink()
    request = InferenceRequest({"text": "talk"}, {"max_tokens": 30})
    speech = speak_reply(engine, request, sink, SpeechSettings(tts_runner="piper",
                                                               max_sentence_chars=60))
    events = [event async for event in speech]
    done = events[-1]
    assert isinstance(done, SpeechDone) and done.error is None, done
    spoken = [e for e in events if isinstance(e, SentenceAudio)]
    assert spoken and {e.result.metadata["runner_name"] for e in spoken} == {"piper"}
    assert {e.result.metadata["voice_used"] for e in spoken} == {"en_US-joe-medium"}
    assert {rate for _, rate in sink.pieces} == {RATE} and sink.queued_ms > 1000
