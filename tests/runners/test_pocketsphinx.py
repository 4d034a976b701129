"""The pocketsphinx runner on the English model inside its wheel (no download), with English
speech from espeak-ng, and its place below vosk in the registry.

pocketsphinx's model hears espeak-ng's voice poorly, above all in a short file; these tests use
a few sentences together, which it mostly gets right, and decoding is deterministic."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pocketsphinx
import pytest

from breeze.engine import Engine, EngineSettings, InferenceRequest, InferenceResult, Registry
from breeze.engine.audio import Pcm
from breeze.runners.pocketsphinx_asr import PocketsphinxRunner
from breeze.runners.vosk_asr import VoskRunner
from tests.runners import test_audio_in
from tests.runners.test_audio_in import no_recording_left, play, speech
from tests.runners.test_vosk import counting

PHRASES = ("turn on the light.", "what time is it.", "please close the door.", "good morning.")
KEYWORDS = {"turn", "on", "the", "light", "what", "time", "is", "it", "please", "close", "door",
            "good", "morning"}


asr_sink = test_audio_in.asr_sink  # fixture: the microphone is this module's own null sink


def english() -> Pcm:
    return speech(*PHRASES, voice="en-us", speed=140)


@pytest.fixture(scope="module")
def runner():
    runner = PocketsphinxRunner()
    yield runner
    runner.unload()


@pytest.fixture
def engine(runner):
    return Engine(Registry([runner]), EngineSettings(emit_interval_ms=0))


@pytest.fixture
def no_downloaded_models(tmp_path, monkeypatch):
    monkeypatch.delenv("BREEZE_CATALOG", raising=False)
    monkeypatch.setenv("BREEZE_MODELS_DIR", str(tmp_path / "models"))


def request(pcm: Pcm, **params: object) -> InferenceRequest:
    return InferenceRequest({"audio": pcm.data}, {"sample_rate": pcm.sample_rate, **params})


async def collect(engine: Engine, req: InferenceRequest) -> list[InferenceResult]:
    return [r async for r in engine.submit(req)]


async def test_english_speech_is_transcribed_utterance_by_utterance(engine):
    results = await collect(engine, request(english()))
    final = results[-1]
    assert final.ok, final.error
    segments = [s["text"] for s in final.metadata["segments"]]
    assert len(segments) == 4, segments
    assert "close the door" in segments[2] and segments[3] == "good morning"
    assert len(set(final.text.split()) & KEYWORDS) >= 6, final.text
    finals = [r for r in results if r.partial and r.metadata["is_final"]]
    assert [r.outputs["segment"] for r in finals] == segments[: len(finals)]
    m = final.metadata
    assert m["model_name"] == "pocketsphinx-en-us" and m["language_detected"] == "en-us"
    assert m["runner_name"] == "pocketsphinx" and m["finish_reason"] == "stop"
    for word in m["words"]:
        assert word["start"] < word["end"] and 0 <= word["conf"] <= 1
    assert [w["word"] for w in m["words"]] == final.text.split()
    starts = [s["start"] for s in m["segments"]]
    assert starts == sorted(starts)


async def test_the_same_keys_as_vosk(engine, runner):
    """The same contract: every metadata key of a vosk result is in a pocketsphinx result."""
    vosk_engine = Engine(Registry([VoskRunner()]), EngineSettings(emit_interval_ms=0))
    theirs = await collect(vosk_engine, request(counting(), language="ko"))
    await vosk_engine.aclose()
    ours = await collect(engine, request(english()))

    def keys(results: list[InferenceResult], final: bool | None) -> set[str]:
        # "coalesced" is the engine's, on results merged while a busy consumer lagged
        return {k for r in results if r.partial and (final is None or r.metadata["is_final"]
                == final) for k in r.metadata} - {"coalesced"}

    for final in (True, False):
        assert keys(theirs, final) <= keys(ours, final)
    assert set(theirs[-1].metadata) - {"elapsed_ms"} <= set(ours[-1].metadata)


async def test_word_mode_scores_words_once_final(engine):
    results = await collect(engine, request(english(), stream_mode="word"))
    in_progress = [r for r in results if "current_word" in r.outputs and not r.metadata["is_final"]]
    assert len(in_progress) >= 6
    assert all(r.outputs["word_confidence"] is None for r in in_progress)
    assert all(r.outputs["current_word"] in r.text.split() for r in in_progress)
    assert all(w["conf"] is not None for w in results[-1].metadata["words"])


async def test_without_a_vosk_model_the_registry_falls_back_to_pocketsphinx(
    no_downloaded_models,
):
    engine = Engine(Registry([VoskRunner(), PocketsphinxRunner()]))
    final = await engine.run(request(english()))
    assert final.ok and "good morning" in final.text
    m = final.metadata
    assert m["runner_name"] == "pocketsphinx" and m["fallback_from"] == ["vosk"]
    assert "E501" in m["fallback_reason"] and "vosk-model-small-en-us" in m["fallback_reason"]


async def test_korean_goes_to_vosk_and_english_variants_to_pocketsphinx(no_downloaded_models):
    engine = Engine(Registry([VoskRunner(), PocketsphinxRunner()]))
    korean = await engine.run(request(counting(), language="ko"))
    assert korean.metadata["runner_name"] == "vosk" and "fallback_from" not in korean.metadata
    us = await engine.run(request(english(), language="en-US"))
    assert us.metadata["runner_name"] == "pocketsphinx" and "good morning" in us.text


async def test_a_language_it_does_not_know_is_e404(engine):
    final = await engine.run(request(english(), language="fr"))
    assert final.error is not None and final.error.code == "E404"
    assert "en-us" in final.error.message


def broken_models(tmp_path: Path) -> dict[str, Path]:
    incomplete = tmp_path / "incomplete"
    shutil.copytree(Path(pocketsphinx.get_model_path()) / "en-us", incomplete)
    (incomplete / "cmudict-en-us.dict").unlink()
    corrupt = tmp_path / "corrupt"
    shutil.copytree(Path(pocketsphinx.get_model_path()) / "en-us", corrupt)
    (corrupt / "en-us" / "mdef").write_text("garbage\n")
    return {"incomplete": incomplete, "corrupt": corrupt, "missing": tmp_path / "nowhere"}


@pytest.mark.parametrize(("kind", "code"), [("missing", "E501"), ("incomplete", "E502"),
                                            ("corrupt", "E502")])
async def test_a_bad_model_directory_is_an_error_result(tmp_path, capfd, kind, code):
    path = broken_models(tmp_path)[kind]
    engine = Engine(Registry([PocketsphinxRunner()]))
    final = await engine.run(request(english(), model=str(path)))
    assert final.error is not None and final.error.code == code, final.error
    assert capfd.readouterr().err == ""  # the corrupt model did not end this process either


async def test_a_copied_model_directory_loads(tmp_path, engine):
    copy = tmp_path / "en-us-copy"
    shutil.copytree(Path(pocketsphinx.get_model_path()) / "en-us", copy)
    embedded = await engine.run(request(english()))
    final = await Engine(Registry([PocketsphinxRunner()])).run(request(english(), model=str(copy)))
    assert final.ok and final.text == embedded.text
    assert final.metadata["model_name"] == "en-us-copy"


async def test_cancel_mid_file_stops_work(engine, runner):
    handle = engine.submit(request(speech(*(PHRASES * 8))))
    results = []
    async for result in handle:
        results.append(result)
        if result.partial and result.text:
            handle.cancel()
    final = results[-1]
    assert final.metadata["finish_reason"] == "cancelled" and final.text
    fed = runner.chunks_fed
    await asyncio.sleep(0.3)
    assert runner.chunks_fed == fed


async def test_two_requests_at_once_share_the_decoder_in_turn(engine):
    """Each request starts from the same decoder state, whatever ran before or beside it."""
    first, second = english(), speech(*reversed(PHRASES))
    alone = [(await engine.run(request(pcm))).text for pcm in (first, second)]
    together = await asyncio.gather(engine.run(request(first)), engine.run(request(second)))
    assert [r.text for r in together] == alone


async def test_dictation_from_the_microphone(engine, asr_sink, tmp_path):
    pcm = english()
    handle = engine.submit(InferenceRequest({"microphone": "pulse"}, {"max_seconds": 12}))
    results: list[InferenceResult] = []
    player = None
    async for result in handle:
        results.append(result)
        if player is None:
            player = play(pcm, tmp_path / "en.wav", asr_sink)
    assert player is not None
    player.wait(timeout=10)
    final = results[-1]
    assert final.ok and final.metadata["finish_reason"] == "length"
    heard = set(final.text.split()) & KEYWORDS
    assert len(heard) >= 3, final.text
    assert any(r.metadata.get("is_final") for r in results[:-1])
    assert no_recording_left(asr_sink)
