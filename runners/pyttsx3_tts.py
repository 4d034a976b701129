"""pyttsx3 runner (TTS): espeak-ng speech, streamed sentence by sentence and within sentences.

The seed's TTS Pattern 2 (sentence-based) with Pattern 1 (progressive audio) inside each
sentence: the text is split into sentences (engine.text), each is synthesized in the worker
process (runners/_tts_worker.py), and its audio is emitted as espeak produces it, so the first
audio arrives after a few milliseconds and sentence i+1 is synthesized while i plays. With
`stream_mode="sentence"` each result carries one whole sentence instead.

Cancelling kills the worker in the middle of its sentence; the next request starts a fresh
one. The terminal result carries no audio, only the totals.
"""

from __future__ import annotations

import ctypes.util
import functools
import importlib.util
import logging
import threading
from collections.abc import Mapping
from typing import Any

from breeze.engine import (
    BlockingRunner,
    BreezeError,
    Cancelled,
    CancelToken,
    Capability,
    Emit,
    InferenceRequest,
    InferenceResult,
    ParamSchema,
    ParamSpec,
    Support,
)
from breeze.engine.text import Sentence, speakable_sentences

from ._tts_worker import Chunk, SynthesisWorker, WorkerError, WorkerInterrupted

log = logging.getLogger("breeze.runners.pyttsx3")

MAX_SENTENCE_CHARS = 300  # longer sentences are cut at clause boundaries
DEFAULT_VOICE = "gmw/en-us"  # understood best by the US English recognizers


class Pyttsx3Runner(BlockingRunner):
    name = "pyttsx3"
    capabilities = frozenset({Capability.TTS})
    priority = 50
    queue_size = 16  # results (about a second of audio each) waiting for the consumer

    def __init__(self, stall_timeout_s: float = 10.0) -> None:
        self.worker = SynthesisWorker(stall_timeout_s=stall_timeout_s)
        self.samples_synthesized = 0  # real backend work, for tests and benchmarks
        self._voices: list[dict[str, Any]] | None = None
        self._lock = threading.Lock()

    # -- set-up --------------------------------------------------------------------------

    def is_supported(self) -> Support:
        return _support()

    def param_schema(self) -> ParamSchema:
        return ParamSchema(
            [
                ParamSpec("voice", str, description="voice id, name or language (--list-voices)"),
                ParamSpec("rate", int, 175, 80, 500, description="speaking rate, words a minute"),
                ParamSpec("volume", float, 1.0, 0.0, 1.0),
            ]
        )

    @property
    def model_name(self) -> str | None:
        return "espeak-ng"

    def load(self, params: Mapping[str, Any]) -> None:
        """Start the worker (once) and check the voice, so a bad one fails before any work."""
        with self._lock:
            self._resolve_voice(params)
            try:
                self.worker.start()  # again after a cancel killed it
            except WorkerError as exc:
                raise BreezeError(exc.code, str(exc)) from None

    def unload(self) -> None:
        with self._lock:
            self.worker.close()

    def voices(self) -> list[dict[str, Any]]:
        """The installed voices: id, name, languages, gender."""
        with self._lock:
            return list(self._voice_list())

    def _voice_list(self) -> list[dict[str, Any]]:
        if self._voices is None:
            try:
                self._voices = self.worker.voices()
            except WorkerError as exc:
                raise BreezeError(exc.code, str(exc)) from None
        return self._voices

    def _resolve_voice(self, params: Mapping[str, Any]) -> str:
        voices = self._voice_list()
        wanted, language = params.get("voice"), params.get("language")
        if wanted:
            found = _find_voice(voices, str(wanted))
            if found is None:
                ids = ", ".join(v["id"] for v in voices)
                raise BreezeError("E400", f"unknown voice {wanted!r}; available voices: {ids}")
            return found
        if language:
            found = _find_voice(voices, str(language))
            if found is None:
                langs = ", ".join(sorted({lang for v in voices for lang in v["languages"]}))
                raise BreezeError("E400", f"no voice speaks {language!r}; languages: {langs}")
            return found
        known = [v["id"] for v in voices]
        return DEFAULT_VOICE if DEFAULT_VOICE in known else known[0]

    # -- synthesis -----------------------------------------------------------------------

    def generate(self, request: InferenceRequest, token: CancelToken, emit: Emit) -> None:
        sentences = speakable_sentences(request.inputs.get("text"), MAX_SENTENCE_CHARS)
        while not self._lock.acquire(timeout=0.05):  # another request is speaking
            token.check()
        try:
            voice = self._resolve_voice(request.params)
            _Speech(self, request, sentences, voice, token, emit).run()
        finally:
            self._lock.release()


@functools.cache
def _support() -> Support:
    """Once: find_library runs ldconfig, too slow to repeat before every request."""
    if importlib.util.find_spec("pyttsx3") is None:
        return Support(False, "pyttsx3 is missing: pip install pyttsx3")
    if not (ctypes.util.find_library("espeak-ng") or ctypes.util.find_library("espeak")):
        return Support(False, "espeak-ng is missing: sudo apt-get install espeak-ng")
    return Support(True)


_LANGUAGE_ALIASES = {"zh": "cmn", "zh-cn": "cmn", "zh-hk": "yue"}  # espeak-ng's codes


def _find_voice(voices: list[dict[str, Any]], wanted: str) -> str | None:
    """By id, name, id without its family (en -> gmw/en), then language (en-gb, en -> en-us)."""
    key = wanted.strip().lower()
    key = _LANGUAGE_ALIASES.get(key, key)
    for match in (
        lambda v: v["id"].lower() == key,
        lambda v: v["name"].lower() == key,
        lambda v: v["id"].lower().rsplit("/", 1)[-1] == key,
        lambda v: key in (lang.lower() for lang in v["languages"]),
        lambda v: any(lang.lower().startswith(key + "-") for lang in v["languages"]),
    ):
        found = [v["id"] for v in voices if match(v)]
        if found:
            return str(found[0])
    return None


class _Speech:
    """One request: sentences through the worker, results out through `emit`."""

    def __init__(
        self,
        runner: Pyttsx3Runner,
        request: InferenceRequest,
        sentences: list[Sentence],
        voice: str,
        token: CancelToken,
        emit: Emit,
    ) -> None:
        self.runner = runner
        self.worker = runner.worker
        self.params = request.params
        self.text_length = len(str(request.inputs["text"]))
        self.sentences = sentences
        self.voice = voice
        self.token = token
        self.emit = emit
        self.by_sentence = self.params.get("stream_mode") == "sentence"
        self.chunk_index = 0
        self.samples = 0  # emitted so far, all sentences
        self.characters = 0  # of the text, spoken or being spoken

    def run(self) -> None:
        try:
            for index, sentence in enumerate(self.sentences):
                self.token.check()
                self._speak(index, sentence)
        except (Cancelled, WorkerInterrupted):
            return self._finish("cancelled")
        except WorkerError as exc:
            if self.token.cancelled:
                return self._finish("cancelled")
            raise BreezeError(exc.code, str(exc), exc.recoverable) from None
        self._finish("stop")

    def _speak(self, index: int, sentence: Sentence) -> None:
        """Each chunk waits for the next (or the sentence's end) so the last can be marked."""
        rate, volume = int(self.params.get("rate", 175)), float(self.params.get("volume", 1.0))
        pending: Chunk | None = None
        with self.worker.synthesize(sentence.text, self.voice, rate, volume) as job:
            self.token.on_cancel(job.interrupt)
            for chunk in job:
                self.runner.samples_synthesized += len(chunk.pcm) // 2
                if pending is not None and self.by_sentence:
                    chunk = Chunk(pending.pcm + chunk.pcm, chunk.characters)
                elif pending is not None:
                    self._emit(index, sentence, pending, end=False)
                pending = chunk
        if pending is not None:
            self._emit(index, sentence, pending, end=True)

    def _emit(self, index: int, sentence: Sentence, chunk: Chunk, end: bool) -> None:
        rate = self.worker.sample_rate
        samples = len(chunk.pcm) // 2
        self.samples += samples
        spoken = len(sentence.text) if end else max(0, min(chunk.characters, len(sentence.text)))
        self.characters = sentence.end if end else sentence.start + spoken
        outputs = {
            "audio": chunk.pcm,
            "sample_rate": rate,
            "channels": 1,
            "chunk_index": self.chunk_index,
        }
        metadata = {
            "sentence_index": index,
            "total_sentences": len(self.sentences),
            "sentence_text": sentence.text,
            "sentence_end": end,
            "audio_duration_ms": round(1000.0 * samples / rate, 3),
            **self._totals(),
        }
        self.chunk_index += 1
        if not self.emit(InferenceResult.success(outputs, metadata, partial=True)):
            raise Cancelled("the consumer is gone")

    def _totals(self) -> dict[str, Any]:
        return {
            "text_characters_processed": self.characters,
            "cumulative_duration_ms": round(1000.0 * self.samples / self.worker.sample_rate, 3),
            "synthesis_progress": round(100.0 * self.characters / self.text_length, 1),
            "voice_used": self.voice,
            "model_name": "espeak-ng",
        }

    def _finish(self, reason: str) -> None:
        """The terminal result: no audio of its own (it was all in the partials), the totals.
        Its empty `audio` also keeps the engine from repeating the last chunk in it."""
        outputs = {"audio": b"", "sample_rate": self.worker.sample_rate, "channels": 1,
                   "chunk_index": self.chunk_index}
        metadata = {"finish_reason": reason, "total_sentences": len(self.sentences),
                    **self._totals()}
        self.emit(InferenceResult.success(outputs, metadata))


RUNNERS = [Pyttsx3Runner]
