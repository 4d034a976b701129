"""vosk runner (ASR): Kaldi models by path, catalog id or language, downloaded on request.

The streaming loop (chunks, partials, finals, the three ASR patterns) is `_asr.AsrRunner`;
this module only opens models and recognizers.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from breeze.engine import BreezeError, CancelToken, ParamSchema, ParamSpec, Support
from breeze.engine.models import (
    DownloadHooks,
    for_language,
    local_path,
    locate,
    normalize_language,
)

from ._asr import AsrRunner, Hypothesis, Recognizer, Word, asr_params
from .audio_in import AudioSource

native_log = logging.getLogger("breeze.native")

__all__ = ["VoskRunner"]


class VoskRunner(AsrRunner):
    """Kaldi models through vosk: by path, catalog id, or language (downloaded on request)."""

    name = "vosk"
    priority = 80

    def __init__(self) -> None:
        super().__init__()
        self.downloads = DownloadHooks()
        self._lock = threading.Lock()
        self._model: Any = None
        self._path: Path | None = None
        self._name: str | None = None
        self._rate = 16000
        self._language = ""

    def is_supported(self) -> Support:
        if importlib.util.find_spec("vosk") is None:
            return Support(False, "vosk is missing: pip install vosk")
        return Support(True)

    def param_schema(self) -> ParamSchema:
        return ParamSchema([
            *asr_params(),
            ParamSpec("download", bool, True, description="download the model of the language "
                                                          "or id asked for when it is missing "
                                                          "(not English while Whisper serves it)"),
        ])

    @property
    def model_name(self) -> str | None:
        return self._name

    @property
    def sample_rate(self) -> int:
        return self._rate

    def model_metadata(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "language_detected": self._language or None,
                "sample_rate": self._rate}

    def load(self, params: Mapping[str, Any]) -> None:
        download = bool(params.get("download", True)) and not _english_offline(params)
        found = locate("vosk", params.get("model"), params.get("language"),
                       download=download, hooks=self.downloads)
        with self._lock:
            self._language = found.language
            if self._path == found.path:
                return
            self._model, self._path = None, None
            self._model, self._rate = _open_model(found.path)
            self._path, self._name = found.path, found.name

    def unload(self) -> None:
        with self._lock:
            self._model, self._path = None, None

    def open_recognizer(self, token: CancelToken, source: AudioSource) -> Recognizer:
        with self._lock:
            model, rate = self._model, self._rate
        if model is None:
            raise BreezeError("E501", "no vosk model is loaded")
        return _VoskRecognizer(model, rate)


class _VoskRecognizer:
    def __init__(self, model: Any, rate: int) -> None:
        self._recognizer = _vosk().KaldiRecognizer(model, float(rate))
        self._recognizer.SetWords(True)
        self._recognizer.SetPartialWords(True)

    def accept(self, pcm: bytes) -> list[Hypothesis]:
        if self._recognizer.AcceptWaveform(pcm):
            return [_hypothesis(json.loads(self._recognizer.Result()), final=True)]
        return [_hypothesis(json.loads(self._recognizer.PartialResult()), final=False)]

    def finish(self) -> Hypothesis:
        return _hypothesis(json.loads(self._recognizer.FinalResult()), final=True)

    def close(self) -> None:
        self._recognizer = None


def _hypothesis(data: Mapping[str, Any], *, final: bool) -> Hypothesis:
    """vosk's JSON: {"text", "result": [words]} when final, {"partial", "partial_result"}."""
    text = str(data.get("text" if final else "partial", "")).strip()
    words = tuple(
        Word(str(w["word"]), float(w["start"]), float(w["end"]), float(w.get("conf", 1.0)))
        for w in data.get("result" if final else "partial_result", [])
    )
    return Hypothesis(text, words, final)


def _english_offline(params: Mapping[str, Any]) -> bool:
    """English asked for by language alone while Whisper's packaged English model is here:
    that serves it offline, so no vosk model is downloaded for it (`breeze models pull`
    still fetches one)."""
    language = normalize_language(str(params.get("language") or ""))
    if params.get("model") or language.split("-")[0] != "en":
        return False
    if importlib.util.find_spec("faster_whisper") is None:
        return False
    return any(local_path(e) is not None for e in for_language("en", "whisper")
               if e.runner == "whisper")


def _vosk() -> Any:
    import vosk

    # Kaldi prints what passes its log level straight to the terminal (no callback): below
    # its lowest severity (-3, a failed assertion) nothing is printed; a failure still
    # raises, and the runner reports it.
    vosk.SetLogLevel(-4)
    return vosk


_PROBE = (
    "import sys, vosk\n"
    "vosk.SetLogLevel(-1)\n"
    "vosk.KaldiRecognizer(vosk.Model(sys.argv[1]), float(sys.argv[2]))"
)


def _probe(path: Path, rate: int) -> None:
    """Load a model that did not come with an installed package in a child process first:
    Kaldi's file readers print a broken file's errors straight to the terminal (no log
    setting reaches them); there they go to the log instead."""
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, str(path), str(rate)],
                              capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise BreezeError("E502", f"loading the vosk model {path} hangs") from None
    if done.returncode == 0:
        return
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    for line in lines:
        native_log.error("vosk: %s", line)
    reason = lines[-1] if lines else f"exit status {done.returncode}"
    raise BreezeError("E502", f"could not load the vosk model {path}: {reason}")


def _open_model(path: Path) -> tuple[Any, int]:
    if not path.is_dir():
        raise BreezeError("E502", f"{path} is not a vosk model directory")
    if not path.resolve().is_relative_to(Path(sysconfig.get_paths()["purelib"]).resolve()):
        _probe(path, _model_rate(path))
    vosk, rate = _vosk(), _model_rate(path)
    try:
        model = vosk.Model(str(path))
        vosk.KaldiRecognizer(model, float(rate))  # a broken graph only fails here
    except Exception as exc:  # vosk raises a bare Exception
        raise BreezeError("E502", f"could not load the vosk model {path}: {exc}") from None
    return model, rate


def _model_rate(path: Path) -> int:
    """The rate the model's features expect (conf/mfcc.conf), 16 kHz when not stated."""
    try:
        conf = (path / "conf" / "mfcc.conf").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return 16000
    found = re.search(r"--sample-frequency=(\d+)", conf)
    return int(found.group(1)) if found else 16000


RUNNERS = [VoskRunner]
