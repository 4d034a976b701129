"""The shared ASR loop (runners/_asr.py) on a scripted recognizer: the transcript it keeps
incrementally is the one computed from scratch, in every stream mode."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from breeze.engine import BreezeError, CancelToken, InferenceRequest, InferenceResult
from breeze.runners._asr import AsrRunner, Hypothesis, Recognizer, Word
from breeze.runners.audio_in import AudioSource, Frame

RATE = 16000


def w(word: str, start: float, conf: float | None = 0.5) -> Word:
    return Word(word, start, start + 0.2, conf)


def h(*words: Word, final: bool = False) -> Hypothesis:
    return Hypothesis(" ".join(x.word for x in words), tuple(words), final)


A, B, C = w("a", 0.0, 0.9), w("b", 0.3, None), w("c", 0.6, 0.4)
D, E, F = w("d", 1.0, 0.8), w("e", 1.3, 0.7), w("f", 1.6, None)
SCRIPT: list[list[Hypothesis]] = [
    [h(A)],
    [h(A, B)],
    [h(A)],  # a revision drops a word
    [h(A, B, C)],
    [h(A, B, C, final=True), h(D)],
    [h()],
    [h(D, E, final=True), h(final=True), h()],  # an empty final is not an utterance
    [h(F)],
]
LAST = h(F, w("g", 1.9, 0.6), final=True)


class Scripted:
    def __init__(self) -> None:
        self.steps = iter(SCRIPT)

    def accept(self, pcm: bytes) -> list[Hypothesis]:
        return next(self.steps)

    def finish(self) -> Hypothesis:
        return LAST

    def close(self) -> None:
        pass


class Silence(AudioSource):
    kind = "audio"
    total_chunks = len(SCRIPT)

    def frames(self, token: CancelToken) -> Iterator[Frame]:
        for i in range(len(SCRIPT)):
            yield Frame(bytes(3200), RATE, 100.0 * i, -120.0)


class ScriptedAsr(AsrRunner):
    name = "scripted-asr"

    @property
    def sample_rate(self) -> int:
        return RATE

    def model_metadata(self) -> dict[str, Any]:
        return {"model_name": "scripted", "language_detected": None, "sample_rate": RATE}

    def audio_source(self, request: InferenceRequest) -> AudioSource:
        return Silence()

    def open_recognizer(self, token: CancelToken, source: AudioSource) -> Recognizer:
        return Scripted()


def run(mode: str) -> list[InferenceResult]:
    results: list[InferenceResult] = []
    request = InferenceRequest({"audio": b""}, {"stream_mode": mode})
    ScriptedAsr().generate(request, CancelToken(), lambda r: results.append(r) is None)
    return results


def mean(words: list[Word]) -> float | None:
    known = [x.conf for x in words if x.conf is not None]
    return round(sum(known) / len(known), 3) if known else None


def replay() -> Iterator[tuple[list[Hypothesis], Hypothesis, list[Hypothesis]]]:
    """Per chunk, from scratch: (finalized utterances so far, in progress, finals now)."""
    segments: list[Hypothesis] = []
    for step in SCRIPT:
        finals = [x for x in step if x.final]
        segments += [x for x in finals if x.text]
        partial = [x for x in step if not x.final][-1]
        yield list(segments), partial, finals


def transcript(segments: list[Hypothesis], partial: Hypothesis) -> str:
    return " ".join(x.text for x in [*segments, partial] if x.text)


def test_chunk_mode_text_and_counts_match_a_recomputation():
    results = run("chunk")
    expected = []
    for segments, partial, finals in replay():
        spoken = [x for x in finals if x.text]
        for index in range(len(spoken)):
            committed = segments[: len(segments) - len(spoken) + index + 1]
            words = [x for s in committed for x in s.words]
            expected.append((transcript(committed, h()), True, len(words)))
        words = [x for s in segments for x in s.words] + list(partial.words)
        if partial.text or not finals:
            expected.append((transcript(segments, partial), False, len(words)))
    got = [(r.text, r.metadata["is_final"], r.metadata["words_recognized"]) for r in results[:-1]]
    assert got == expected
    assert all(r.partial for r in results[:-1]) and not results[-1].partial


def test_word_mode_announces_each_word_with_the_running_confidence():
    results = run("word")[:-1]
    announced = [(r.outputs.get("current_word"), r.metadata["words_recognized"],
                  r.metadata.get("overall_confidence")) for r in results]
    transcript_words = [A, B, C, D, E, F]
    expected = [
        ("a", 1, mean([A])),
        ("b", 2, mean([A, B])),
        ("b", 2, mean([A, B])),  # dropped by the revision, announced again
        ("c", 3, mean([A, B, C])),
        ("c", 3, mean([A, B, C])),  # the utterance finalized
        ("d", 4, mean(transcript_words[:4])),
        ("e", 5, mean(transcript_words[:5])),  # the second utterance finalized
        ("f", 6, mean(transcript_words[:6])),
    ]
    assert announced == expected
    assert [r.metadata["is_final"] for r in results].count(True) == 2


@pytest.mark.parametrize("mode", ["chunk", "word", "sentence"])
def test_the_terminal_result_holds_every_utterance(mode):
    terminal = run(mode)[-1]
    words = [A, B, C, D, E, *LAST.words]
    assert terminal.text == "a b c d e f g"
    assert terminal.metadata["words_recognized"] == len(words)
    assert terminal.metadata["confidence"] == mean(words)
    assert [s["text"] for s in terminal.metadata["segments"]] == ["a b c", "d e", "f g"]
    assert terminal.metadata["chunks_processed"] == len(SCRIPT)


class Unplugged(Silence):
    """A microphone that stops sending audio after five chunks."""

    def frames(self, token: CancelToken) -> Iterator[Frame]:
        yield from itertools.islice(super().frames(token), 5)
        raise BreezeError("E501", "the microphone pulse sends no audio")


def test_audio_failing_mid_stream_still_finalizes_what_was_heard():
    runner = ScriptedAsr()
    runner.audio_source = lambda request: Unplugged()  # type: ignore[method-assign]
    results: list[InferenceResult] = []
    request = InferenceRequest({"audio": b""}, {"stream_mode": "chunk"})
    runner.generate(request, CancelToken(), lambda r: results.append(r) is None)
    terminal = results[-1]
    assert terminal.error is not None and terminal.error.code == "E501"
    # the utterance in progress ("d" then) is finalized by the recognizer, not dropped
    assert [s["text"] for s in terminal.metadata["segments"]] == ["a b c", "f g"]
    assert terminal.text == "a b c f g"
