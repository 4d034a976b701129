"""The pyttsx3 runner on real espeak-ng: results, metadata, voices, bad inputs, cancel, load."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest

from breeze.engine import Capability, Engine, InferenceRequest, InferenceResult, Registry
from breeze.engine.audio import dbfs, resample
from breeze.engine.text import split_sentences
from breeze.runners.audio_out import Player
from breeze.runners.pyttsx3_tts import Pyttsx3Runner

from .test_audio_out import MonitorRecorder, tts_sink, warm  # noqa: F401 (a fixture)

# pocketsphinx's US English model hears these key words in espeak's voice every time (the
# greeting only most of the time)
SPOKEN = "Good morning. The number is three four five."
KEY_WORDS = {"three", "four", "five"}
PARAGRAPH = (
    "The morning was quiet. Birds sang in the old oak tree. A cat watched them from the "
    "window. Then the rain began to fall. Everyone went inside for tea."
)


@pytest.fixture(scope="module")
def runner():
    runner = Pyttsx3Runner()
    yield runner
    runner.unload()


@pytest.fixture
def engine(runner):
    return Engine(Registry([runner]))


def speak(text: str, **params) -> InferenceRequest:
    return InferenceRequest({"text": text}, params, capability=Capability.TTS)


async def collect(engine: Engine, request: InferenceRequest) -> list[InferenceResult]:
    return [r async for r in engine.submit(request)]


def audio_of(results: list[InferenceResult]) -> bytes:
    return b"".join(r.outputs["audio"] for r in results if r.ok)


def hear(pcm: bytes, rate: int) -> str:
    """What pocketsphinx's US English model (16 kHz) hears."""
    from pocketsphinx import Decoder

    decoder = Decoder()
    decoder.start_utt()
    decoder.process_raw(resample(pcm, rate, 16000), full_utt=True)
    decoder.end_utt()
    return decoder.hyp().hypstr if decoder.hyp() is not None else ""


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
        assert (out["sample_rate"], out["channels"], out["chunk_index"]) == (22050, 1, i)
        assert meta["total_sentences"] == 5
        assert meta["sentence_text"] == sentences[meta["sentence_index"]]
        assert meta["audio_duration_ms"] == pytest.approx(len(out["audio"]) / 2 / 22.05, abs=0.01)
        total_ms += meta["audio_duration_ms"]
        assert meta["cumulative_duration_ms"] == pytest.approx(total_ms, abs=0.01)
        assert meta["voice_used"] == "gmw/en-us"
        assert 0 < meta["synthesis_progress"] <= 100
    indexes = [r.metadata["sentence_index"] for r in partials]
    assert indexes == sorted(indexes) and set(indexes) == set(range(5))
    ends = [r for r in partials if r.metadata["sentence_end"]]
    assert [r.metadata["sentence_index"] for r in ends] == list(range(5))
    processed = [r.metadata["text_characters_processed"] for r in partials]
    assert processed == sorted(processed) and processed[-1] == len(PARAGRAPH)
    assert partials[-1].metadata["synthesis_progress"] == 100.0
    assert terminal.metadata["cumulative_duration_ms"] == pytest.approx(total_ms, abs=0.01)
    assert 8000 < total_ms < 20000  # five short sentences at 175 words a minute


async def test_audio_streams_within_a_sentence(engine):
    long_sentence = "This sentence goes on and on, " * 6 + "until it finally ends."
    results = await collect(engine, speak(long_sentence))
    chunks = [r for r in results if r.partial]
    assert len(chunks) > 3, "a long sentence arrives in several chunks"
    assert {r.metadata["sentence_index"] for r in chunks} == {0}
    assert chunks[0].metadata["audio_duration_ms"] <= 1100  # espeak's buffers: ~1 s


async def test_sentence_mode_gives_one_result_per_sentence(engine):
    chunked = audio_of(await collect(engine, speak(PARAGRAPH)))
    results = await collect(engine, speak(PARAGRAPH, stream_mode="sentence"))
    assert [r.metadata.get("sentence_index") for r in results[:-1]] == [0, 1, 2, 3, 4]
    assert all(r.metadata["sentence_end"] for r in results[:-1])
    assert abs(len(audio_of(results)) - len(chunked)) < 0.02 * len(chunked)


async def test_spoken_words_are_recognized(engine):
    """The round trip: espeak's audio, transcribed by pocketsphinx, has the key words."""
    results = await collect(engine, speak(SPOKEN))
    heard = hear(audio_of(results), 22050).split()
    assert KEY_WORDS <= set(heard), heard


@pytest.mark.usefixtures("tts_sink")
async def test_played_into_the_sink_it_is_heard_for_as_long_as_it_lasts(engine):
    results = await collect(engine, speak(SPOKEN))
    duration_ms = results[-1].metadata["cumulative_duration_ms"]
    with Player("pulse") as player:
        warm(player)
        with MonitorRecorder() as recorder:
            for r in results:
                player.play(r.outputs["audio"], r.outputs["sample_rate"])
            assert player.wait(timeout=30)
            recorder.wait_quiet()
    spans = recorder.spans(bridge_ms=600)  # the pause between the sentences is bridged
    assert len(spans) == 1, spans
    heard_ms = spans[0][1] - spans[0][0]
    # less its leading and trailing hush; on a loaded machine an underrun may stretch it a
    # little, while a sentence played twice would add its whole length
    assert duration_ms - 600 < heard_ms <= duration_ms + 600
    assert dbfs(recorder.samples().tobytes()) > -40
    assert KEY_WORDS <= set(recorder.transcript().split()), recorder.transcript()


async def test_voices_rate_and_volume(engine, runner):
    voices = runner.voices()
    assert len(voices) > 50 and {"id", "name", "languages"} <= set(voices[0])
    by_name = await collect(engine, speak("Good morning.", voice="English (Great Britain)"))
    assert by_name[-1].metadata["voice_used"] == "gmw/en"
    korean = await collect(engine, speak("안녕하세요.", language="ko"))
    assert korean[-1].ok and korean[-1].metadata["voice_used"] == "ko"
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
        assert len(audio_of(results)) > 10_000


@pytest.mark.parametrize(
    ("inputs", "params", "code", "says"),
    [
        ({"text": ""}, {}, "E400", "empty"),
        ({"text": " \n\t "}, {}, "E400", "empty"),
        ({"text": "...!? -- ;"}, {}, "E400", "nothing to speak"),
        ({"text": "word " * 200_000}, {}, "E400", "too long"),
        ({"text": "Hi."}, {"voice": "no-such-voice"}, "E400", "gmw/en-us"),
        ({"text": "Hi."}, {"language": "xx-nowhere"}, "E400", "languages"),
        ({"text": "Hi."}, {"rate": 5}, "E400", "rate"),
        ({"text": "Hi."}, {"volume": 2.0}, "E400", "volume"),
        ({"text": "Hi."}, {"pitch": 3}, "E400", "pitch"),
        ({"messages": [{"role": "user", "content": "Hi."}]}, {}, "E400", "empty"),
        ({"text": "\ud800 broken"}, {}, "E400", "not valid Unicode"),
    ],
    ids=["empty", "blank", "punctuation", "1MB", "voice", "language", "rate", "volume",
         "unknown-param", "no-text", "lone-surrogate"],
)
async def test_bad_inputs_are_e400_at_once(engine, inputs, params, code, says):
    start = time.perf_counter()
    results = await collect(engine, InferenceRequest(inputs, params, capability=Capability.TTS))
    assert len(results) == 1 and results[0].error is not None
    assert results[0].error.code == code and says in results[0].error.message
    assert time.perf_counter() - start < 5


async def test_cancel_mid_paragraph_stops_the_worker_and_the_audio(engine, runner):
    await collect(engine, speak("Warm up."))
    pid = runner.worker.pid
    handle = engine.submit(speak(PARAGRAPH * 8))
    results = []
    async for result in handle:
        results.append(result)
        if len(results) == 1:
            handle.cancel()
            synthesized = runner.samples_synthesized
    assert [r.partial for r in results] == [True, False], "audio came after the cancel"
    assert results[-1].metadata["finish_reason"] == "cancelled"
    assert results[-1].outputs["audio"] == b""
    await asyncio.sleep(0.3)
    assert runner.samples_synthesized == synthesized, "synthesis went on after cancel"
    assert not _alive(pid), "the worker was not stopped mid-sentence"
    again = await collect(engine, speak("Still working."))
    assert again[-1].ok and audio_of(again)
    assert runner.worker.pid != pid


async def test_two_hundred_requests_neither_hang_nor_leak(engine, runner):
    await collect(engine, speak("Warm up."))
    starts, threads, fds = runner.worker.starts, threading.active_count(), _open_fds()
    children = _children()
    for i in range(200):
        results = await asyncio.wait_for(collect(engine, speak(f"Request number {i}.")), 10)
        assert results[-1].ok and audio_of(results), (i, results[-1].error)
    assert runner.worker.starts == starts, "the worker had to be restarted"
    await asyncio.sleep(0.2)
    assert threading.active_count() <= threads
    assert _open_fds() <= fds + 2
    assert _children() == children


async def test_requests_at_the_same_time_take_turns(engine):
    texts = ["First request here.", "Second request here.", "Third request here."]
    runs = await asyncio.gather(*(collect(engine, speak(t)) for t in texts))
    for text, results in zip(texts, runs, strict=True):
        assert results[-1].ok
        assert results[0].metadata["sentence_text"] == text


async def test_a_hung_worker_is_killed_and_the_request_retried(runner):
    stalling = Pyttsx3Runner(stall_timeout_s=1.0)
    engine = Engine(Registry([stalling]))
    try:
        await collect(engine, speak("Warm up."))
        hung = stalling.worker.pid
        os.kill(hung, signal.SIGSTOP)  # as pyttsx3's loop does when it hangs: no progress
        start = time.perf_counter()
        results = await collect(engine, speak("Are you still there?"))
        assert results[-1].ok and audio_of(results)
        assert results[-1].metadata["retries"] == 1
        assert time.perf_counter() - start < 10
        assert not _alive(hung) and stalling.worker.pid != hung
    finally:
        stalling.unload()


def _alive(pid: int | None) -> bool:
    """Running (a zombie does not count: it is dead, only not reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, TypeError):
        return False


def _children() -> set[int]:
    mine = str(os.getpid())
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if stat.read().rsplit(")", 1)[1].split()[1] == mine:
                        found.add(int(entry))
            except OSError:
                pass
    return found


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))

