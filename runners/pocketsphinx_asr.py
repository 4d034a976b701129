"""pocketsphinx runner (ASR): the US English model inside the pocketsphinx wheel, so English
dictation works on a fresh machine with no download. Below vosk in priority: the registry falls
back to it when vosk has no model for the request.

Utterances are cut by pocketsphinx's voice-activity endpointer; the decoder hears all of the
audio (silence too), which recognizes better than feeding it the speech regions alone.

From the model's generic cepstral mean (the normalization of the voice and channel) the first
utterance is often garbled, so for audio given whole the mean is first estimated on its opening
seconds, and from a microphone the first utterance is decoded again once the mean has adapted.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from breeze.engine import BreezeError, CancelToken, ParamSchema, Support
from breeze.engine.models import locate

from ._asr import AsrRunner, Hypothesis, Recognizer, Word, asr_params
from .audio_in import AudioSource

__all__ = ["PocketsphinxRunner"]

RATE = 16000  # the rate of the acoustic model
PRIME_S = 5.0  # audio that primes the cepstral mean of a file
REPLAY_S = 10.0  # at most this much of a live first utterance is decoded again
_LOCK_POLL_S = 0.1
_ALTERNATE = re.compile(r"\(\d+\)$")  # 'read(2)': the second pronunciation of 'read'


class PocketsphinxRunner(AsrRunner):
    name = "pocketsphinx"
    priority = 40

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()  # one decoder: one request at a time
        self._decoder: Any = None
        self._cmn = ""
        self._path: Path | None = None
        self._name: str | None = None
        self._language = ""

    def is_supported(self) -> Support:
        if importlib.util.find_spec("pocketsphinx") is None:
            return Support(False, "pocketsphinx is missing: pip install pocketsphinx")
        return Support(True)

    def param_schema(self) -> ParamSchema:
        return ParamSchema(asr_params())

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
        found = locate("pocketsphinx", params.get("model"), params.get("language"))
        if self._path == found.path:
            return
        decoder = _open_decoder(found.path)
        with self._lock:
            self._decoder, self._cmn = decoder, decoder.get_cmn(False)
            self._path, self._name, self._language = found.path, found.name, found.language

    def unload(self) -> None:
        with self._lock:
            self._decoder, self._path, self._name = None, None, None

    def open_recognizer(self, token: CancelToken, source: AudioSource) -> Recognizer:
        while not self._lock.acquire(timeout=_LOCK_POLL_S):
            token.check()  # waiting for another request to end must not outlive a cancel
        try:
            if self._decoder is None:
                raise BreezeError("E501", "no pocketsphinx model is loaded")
            recognizer = _SphinxRecognizer(self._decoder, self._lock, token)
            recognizer.prime(self._cmn, source.head(PRIME_S))
            return recognizer
        except BaseException:
            self._lock.release()
            raise


class _SphinxRecognizer:
    """Holds the runner's lock until closed."""

    def __init__(self, decoder: Any, lock: threading.Lock, token: CancelToken) -> None:
        import pocketsphinx

        self._decoder, self._lock, self._token = decoder, lock, token
        self._endpointer = pocketsphinx.Endpointer(sample_rate=RATE)
        self._frame_bytes = self._endpointer.frame_bytes
        self._cold = True  # the cepstral mean has not seen this audio yet
        self._replay: deque[bytes] = deque(
            maxlen=int(REPLAY_S / self._endpointer.frame_length)
        )
        self._pending = b""
        self._fed_s = 0.0  # audio given to the decoder, seconds
        self._utterance_s = 0.0  # where the current utterance started
        self._frame_rate = int(decoder.config["frate"])
        self._in_utterance = False

    def prime(self, cmn: str, head: bytes) -> None:
        """Start from the model's cepstral mean (so results do not depend on earlier
        requests), updated from `head` when the audio is known in advance."""
        self._decoder.set_cmn(cmn)
        if head:
            self._decoder.start_utt()
            self._decoder.process_raw(head, no_search=True)
            self._decoder.end_utt()
            self._cold = False
        self._start_utterance()

    def accept(self, pcm: bytes) -> list[Hypothesis]:
        found: list[Hypothesis] = []
        data = self._pending + pcm
        size = self._frame_bytes
        whole = len(data) - len(data) % size
        for offset in range(0, whole, size):
            frame = data[offset : offset + size]
            was_speech = self._endpointer.in_speech
            self._endpointer.process(frame)
            self._decoder.process_raw(frame)
            if self._cold:
                self._replay.append(frame)
            self._fed_s += len(frame) / 2 / RATE
            if was_speech and not self._endpointer.in_speech:  # the speaker paused
                found.append(self._end_utterance())
                self._start_utterance()
        self._pending = data[whole:]
        found.append(self._hypothesis(final=False))
        return found

    def finish(self) -> Hypothesis:
        if self._pending:
            self._decoder.process_raw(self._pending)
            self._pending = b""
        return self._end_utterance()

    def close(self) -> None:
        try:
            if self._in_utterance:
                self._decoder.end_utt()
                self._in_utterance = False
        finally:
            self._lock.release()

    def _start_utterance(self) -> None:
        self._decoder.start_utt()
        self._in_utterance = True
        self._utterance_s = self._fed_s

    def _end_utterance(self) -> Hypothesis:
        self._decoder.end_utt()
        self._in_utterance = False
        if self._cold and not self._token.cancelled:  # a cancel must end the request promptly
            return self._decode_again()
        return self._hypothesis(final=True)

    def _decode_again(self) -> Hypothesis:
        """The first utterance, decoded again now that the cepstral mean has adapted."""
        self._cold = False
        audio = b"".join(self._replay)
        self._replay.clear()
        self._utterance_s = self._fed_s - len(audio) / 2 / RATE
        self._decoder.start_utt()
        self._decoder.process_raw(audio, full_utt=True)
        self._decoder.end_utt()
        return self._hypothesis(final=True)

    def _hypothesis(self, *, final: bool) -> Hypothesis:
        hyp = self._decoder.hyp()
        text = hyp.hypstr.strip() if hyp is not None else ""
        return Hypothesis(text, self._words(final) if text else (), final)

    def _words(self, final: bool) -> tuple[Word, ...]:
        """Words with times in the stream; posteriors are known only once final."""
        words = []
        for segment in self._decoder.seg():
            if segment.word.startswith(("<", "[", "+")):  # <s>, <sil>, [NOISE], ++UH++
                continue
            words.append(Word(
                _ALTERNATE.sub("", segment.word),
                self._utterance_s + segment.start_frame / self._frame_rate,
                self._utterance_s + (segment.end_frame + 1) / self._frame_rate,
                float(segment.prob) if final else None,
            ))
        return tuple(words)


def _model_files(path: Path) -> dict[str, str]:
    """A pocketsphinx model directory: an acoustic model folder (with mdef), a language model
    (*.lm.bin or *.lm) and a pronunciation dictionary (*.dict), as the wheel's en-us has."""
    if not path.is_dir():
        raise BreezeError("E502", f"{path} is not a pocketsphinx model directory")
    acoustic = [p for p in [path, *sorted(path.iterdir())] if (p / "mdef").is_file()]
    lms = sorted(p for p in path.glob("*.lm*") if "phone" not in p.name)
    dicts = sorted(path.glob("*.dict"))
    if not (acoustic and lms and dicts):
        raise BreezeError(
            "E502", f"{path} is not a pocketsphinx model: it needs an acoustic model folder "
                    "(with mdef), a *.lm.bin language model and a *.dict dictionary"
        )
    return {"hmm": str(acoustic[0]), "lm": str(lms[0]), "dict": str(dicts[0])}


def _open_decoder(path: Path) -> Any:
    files = _model_files(path)
    import pocketsphinx

    if not path.resolve().is_relative_to(Path(pocketsphinx.get_model_path()).resolve()):
        _probe(path, files)
    try:
        return pocketsphinx.Decoder(**files, samprate=RATE, loglevel="FATAL")
    except (RuntimeError, ValueError, OSError) as exc:
        raise BreezeError("E502", f"could not load the pocketsphinx model {path}: {exc}") from None


_PROBE = (
    "import sys, pocketsphinx\n"
    "pocketsphinx.Decoder(**dict(a.split('=', 1) for a in sys.argv[1:]), loglevel='ERROR')"
)


def _probe(path: Path, files: dict[str, str]) -> None:
    """Load a model that did not come with the wheel in a child process first: on a corrupt
    file pocketsphinx does not raise, it exits the process."""
    args = [f"{key}={value}" for key, value in files.items()]
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True,
                              text=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise BreezeError("E502", f"loading the pocketsphinx model {path} hangs") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {done.returncode}"
        raise BreezeError("E502", f"could not load the pocketsphinx model {path}: {reason}")


RUNNERS = [PocketsphinxRunner]
