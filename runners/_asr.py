"""The streaming recognition loop every ASR runner shares (vosk_asr.py, pocketsphinx_asr.py,
whisper_asr.py).

The loop follows the seed's three ASR patterns. Each chunk fed to the recognizer yields a
result with the real-time keys (Pattern 1: confidence, is_final, words, ...) and the chunk keys
(Pattern 2: chunk_index, total_chunks, processing_time_ms, ...); `stream_mode="word"` yields one
result per recognized word instead (Pattern 3), `"sentence"` one per finalized utterance.
Finalized utterances accumulate into `outputs["text"]`; the utterance in progress ends it and
may be revised by the next partial. A runner plugs its own recognizer into the loop, so every
ASR runner gives the same keys.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from breeze.engine import (
    BlockingRunner,
    BreezeError,
    CancelToken,
    Capability,
    Emit,
    InferenceRequest,
    InferenceResult,
    ParamSpec,
)

from .audio_in import INPUT_PARAMS, AudioSource, Frame, open_source

__all__ = ["AsrRunner", "Hypothesis", "Recognizer", "Word", "asr_params"]


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float  # seconds from the start of the stream
    end: float
    conf: float | None  # None while the recognizer has not scored it yet

    def to_dict(self) -> dict[str, Any]:
        conf = None if self.conf is None else round(self.conf, 3)
        return {"word": self.word, "start": round(self.start, 3), "end": round(self.end, 3),
                "conf": conf}


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """An utterance: final (it never changes again) or in progress."""

    text: str
    words: tuple[Word, ...] = ()
    final: bool = False
    stable: int | None = None  # in progress: how many of its first words are settled, if known
    hearing: bool = False  # in progress: speech is heard, whether or not it has words yet

    @property
    def confidence(self) -> float | None:
        return _mean(w.conf for w in self.words)


class Recognizer(Protocol):
    def accept(self, pcm: bytes) -> list[Hypothesis]:
        """Feed audio; the utterances it finalized, then the one in progress."""
        ...

    def finish(self) -> Hypothesis:
        """The utterance in progress, finalized: the stream has ended."""
        ...

    def close(self) -> None: ...


def asr_params() -> list[ParamSpec]:
    return [
        ParamSpec("stream_mode", str, "chunk", choices=("chunk", "token", "word", "sentence"),
                  description="chunk or token: a result per audio chunk; word: one per "
                              "recognized word; sentence: one per finalized utterance"),
        *INPUT_PARAMS,
    ]


class AsrRunner(BlockingRunner):
    """A streaming ASR runner: subclasses load a model and open one recognizer a request."""

    __abstract_runner__ = True
    capabilities = frozenset({Capability.ASR})

    def __init__(self) -> None:
        self.chunks_fed = 0  # backend work: audio chunks given to a recognizer

    @property
    def sample_rate(self) -> int:
        """The rate the loaded model wants."""
        raise NotImplementedError

    def model_metadata(self) -> dict[str, Any]:
        raise NotImplementedError

    def open_recognizer(self, token: CancelToken, source: AudioSource) -> Recognizer:
        raise NotImplementedError

    def recognizer_for(
        self, request: InferenceRequest, token: CancelToken, source: AudioSource
    ) -> Recognizer:
        """The recognizer of one request; override to tune it from the request's params."""
        return self.open_recognizer(token, source)

    def audio_source(self, request: InferenceRequest) -> AudioSource:
        """The request's audio as frames at the model's rate (E400 for bad input)."""
        return open_source(request.inputs, request.params, self.sample_rate)

    def generate(self, request: InferenceRequest, token: CancelToken, emit: Emit) -> None:
        source = self.audio_source(request)
        try:
            recognizer = self.recognizer_for(request, token, source)
            try:
                terminal = _Transcription(self, request.params, source, emit).run(recognizer, token)
            finally:
                recognizer.close()
        finally:
            source.close()  # the microphone is closed however the request ends...
        emit(terminal)  # ...and before the consumer hears that it has


class _Transcription:
    """One request: the transcript so far and the results that show it.

    The committed transcript (its text, its words and the running sums of their confidences)
    grows in place, so a result costs the same at the end of an hour of dictation as at the
    start, apart from copying the text it carries."""

    def __init__(
        self, runner: AsrRunner, params: Mapping[str, Any], source: AudioSource, emit: Emit
    ) -> None:
        self.runner, self.source, self.emit = runner, source, emit
        self.mode = params.get("stream_mode", "chunk")
        self.meta = {**runner.model_metadata(), **source.info()}
        self.total_chunks = source.total_chunks
        self.segments: list[Hypothesis] = []
        self.partial = Hypothesis("")
        self.committed_text = ""
        self.committed_words: list[Word] = []
        self._conf_sums = [0.0]  # [i]: sum of the known confidences of the first i words
        self._conf_known = [0]  # [i]: how many of the first i words have one
        self.words_sent = 0
        self._words_peak = 0  # the most words of the transcript ever announced
        self.chunks = 0
        self.audio_ms = 0.0
        self.busy_s = 0.0  # time spent inside the recognizer

    @property
    def text(self) -> str:
        committed, partial = self.committed_text, self.partial.text
        if committed and partial:
            return f"{committed} {partial}"
        return committed or partial

    @property
    def words_recognized(self) -> int:
        return len(self.committed_words) + len(self.partial.words)

    def _commit(self, hypothesis: Hypothesis) -> None:
        self.segments.append(hypothesis)
        text = self.committed_text
        self.committed_text = f"{text} {hypothesis.text}" if text else hypothesis.text
        sums, known = self._conf_sums, self._conf_known
        for word in hypothesis.words:
            self.committed_words.append(word)
            if word.conf is None:
                sums.append(sums[-1])
                known.append(known[-1])
            else:
                sums.append(sums[-1] + word.conf)
                known.append(known[-1] + 1)

    def _word(self, index: int) -> Word:
        """The index-th word of the transcript, committed or in progress."""
        committed = len(self.committed_words)
        if index < committed:
            return self.committed_words[index]
        return self.partial.words[index - committed]

    def _confidence_sums(self, count: int) -> tuple[float, int]:
        """The sum and number of the known confidences of the transcript's first words."""
        committed = len(self.committed_words)
        if count <= committed:
            return self._conf_sums[count], self._conf_known[count]
        total, known = self._conf_sums[committed], self._conf_known[committed]
        for word in self.partial.words[: count - committed]:
            if word.conf is not None:
                total += word.conf
                known += 1
        return total, known

    def run(self, recognizer: Recognizer, token: CancelToken) -> InferenceResult:
        """Feed every frame; the terminal result. When the audio fails mid-stream (a
        microphone unplugged), the words heard so far are finalized all the same: the error
        result carries them."""
        failure: BreezeError | None = None
        try:
            for frame in self.source.frames(token):
                started = time.perf_counter()
                hypotheses = recognizer.accept(frame.pcm)
                spent = time.perf_counter() - started
                self.runner.chunks_fed += 1
                self.chunks += 1
                self.audio_ms = frame.end_ms
                self.busy_s += spent
                self._publish(hypotheses, self._chunk_meta(frame, spent))
        except BreezeError as exc:
            failure = exc
        last = recognizer.finish()
        self.partial = Hypothesis("")
        if last.text:
            self._commit(last)
        if failure is not None:
            heard = self._terminal("error")
            return InferenceResult.failure(failure.error, heard.outputs, heard.metadata)
        reason = "cancelled" if token.cancelled else self.source.finish_reason
        return self._terminal(reason)

    def _chunk_meta(self, frame: Frame, spent: float) -> dict[str, Any]:
        total = self.total_chunks
        meta = {
            "chunk_index": self.chunks - 1,
            "chunks_processed": self.chunks,
            "total_chunks": total,
            "processing_time_ms": round(spent * 1000, 2),
            "audio_duration_processed_ms": round(frame.end_ms, 1),
            "level_dbfs": frame.level_dbfs,
        }
        if total:
            meta["progress_percent"] = round(100 * self.chunks / total, 1)
        return meta

    def _publish(self, hypotheses: list[Hypothesis], chunk: dict[str, Any]) -> None:
        finals = False
        for hypothesis in hypotheses:
            if hypothesis.final:
                finals = True
                if hypothesis.text and self.mode == "word":
                    self._announce_unheard(hypothesis, chunk)
                self.partial = Hypothesis("")
                self.words_sent = min(self.words_sent, len(self.committed_words))
                if hypothesis.text:
                    self._commit(hypothesis)
                    self._send(hypothesis, chunk, is_final=True)
            else:
                self.partial = hypothesis  # the last one in progress wins
        if self.mode == "word":
            self._send_words(chunk)
        elif self.mode != "sentence" and (self.partial.text or not finals):
            self._send(self.partial, chunk, is_final=False)

    def _send(self, hypothesis: Hypothesis, chunk: dict[str, Any], *, is_final: bool) -> None:
        outputs: dict[str, Any] = {"text": self.text, "segment": hypothesis.text}
        count = self.words_recognized
        meta = {
            **self.meta,
            **chunk,
            "is_final": is_final,
            "confidence": hypothesis.confidence,
            "words": [w.to_dict() for w in hypothesis.words],
            "segment_index": len(self.segments) - 1 if is_final else len(self.segments),
            "words_recognized": count,
        }
        if not is_final:
            meta["hearing"] = hypothesis.hearing or bool(hypothesis.text)
            if hypothesis.stable is not None:
                meta["stable_words"] = hypothesis.stable
        if self.mode == "word" and hypothesis.words:
            outputs.update(_word_outputs(hypothesis.words[-1]))
            meta["overall_confidence"] = _ratio(*self._confidence_sums(count))
            self.words_sent = count
            self._words_peak = max(self._words_peak, count)
        self.emit(InferenceResult.success(outputs, meta, partial=True))

    def _announce_unheard(self, final: Hypothesis, chunk: dict[str, Any]) -> None:
        """Words of a final utterance that no partial showed (a recognizer that decodes the
        utterance in progress only now and then) are announced one by one before it; its
        last word is the final result's own."""
        self.partial = Hypothesis(final.text, final.words[:-1])
        self.words_sent = max(self.words_sent, self._words_peak)
        self._send_words(chunk)

    def _send_words(self, chunk: dict[str, Any]) -> None:
        """Pattern 3: one result per word of the utterance in progress not yet announced."""
        count = self.words_recognized
        if self.words_sent >= count:
            self.words_sent = count  # a revision that dropped words announces them again
            return
        text, segment = self.text, self.partial.text
        total, known = self._confidence_sums(self.words_sent)
        for index in range(self.words_sent, count):
            word = self._word(index)
            if word.conf is not None:
                total += word.conf
                known += 1
            outputs = {"text": text, "segment": segment, **_word_outputs(word)}
            meta = {
                **self.meta,
                **chunk,
                "is_final": False,
                "words_recognized": index + 1,
                "overall_confidence": _ratio(total, known),
                "no_coalesce": True,  # each word is an event of its own, not a newer state
            }
            self.emit(InferenceResult.success(outputs, meta, partial=True))
        self.words_sent = count
        self._words_peak = max(self._words_peak, count)

    def _terminal(self, reason: str) -> InferenceResult:
        words = self.committed_words
        audio_ms = self.audio_ms
        meta = {
            **self.meta,
            "finish_reason": reason,
            "is_final": True,
            "confidence": _ratio(self._conf_sums[-1], self._conf_known[-1]),
            "words": [w.to_dict() for w in words],
            "segments": [_segment(h) for h in self.segments],
            "words_recognized": len(words),
            "audio_duration_processed_ms": round(audio_ms, 1),
            "chunks_processed": self.chunks,
            "total_chunks": self.total_chunks,
            "processing_time_ms": round(self.busy_s * 1000, 1),
            "real_time_factor": round(self.busy_s * 1000 / audio_ms, 3) if audio_ms else None,
        }
        return InferenceResult.success({"text": self.text}, meta)


def _word_outputs(word: Word) -> dict[str, Any]:
    return {"current_word": word.word, "word_confidence": word.conf,
            "word_start_time": round(word.start, 3), "word_end_time": round(word.end, 3)}


def _segment(hypothesis: Hypothesis) -> dict[str, Any]:
    words = hypothesis.words
    return {"text": hypothesis.text, "start": round(words[0].start, 3) if words else None,
            "end": round(words[-1].end, 3) if words else None,
            "confidence": hypothesis.confidence}


def _mean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return _ratio(sum(known), len(known))


def _ratio(total: float, known: int) -> float | None:
    return round(total / known, 3) if known else None
