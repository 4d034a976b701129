"""The Piper runner (a neural voice on onnxruntime) joins the contract suite; skipped, saying
why, when the neural-voice extra is not installed."""

from __future__ import annotations

from collections.abc import Callable

from breeze.engine import Capability, InferenceRequest, Runner
from breeze.runners.piper_tts import PiperRunner, VoiceCache

from .cases import ContractCase

SENTENCES = (
    "The morning was quiet. Birds sang in the old oak tree. A cat watched them from the "
    "window. Then the rain began to fall. "
)
_CACHE = VoiceCache()  # the voice is loaded once for the whole suite


def _runner() -> Runner:
    return PiperRunner(cache=_CACHE)


def _samples_synthesized(runner: Runner) -> int:
    """Audio samples the model has produced: it produces none unless it works."""
    return int(runner.samples_synthesized)  # type: ignore[attr-defined]


def _say(text: str, **params: object) -> Callable[[], InferenceRequest]:
    return lambda: InferenceRequest({"text": text}, params, capability=Capability.TTS)


CASES = [
    ContractCase(
        id="piper-joe",
        make_runner=_runner,
        capability=Capability.TTS,
        request=_say(SENTENCES),
        long_request=_say(SENTENCES * 25),  # about three minutes of speech
        bad_request=_say("Hello.", voice="no-such-voice"),
        work_done=_samples_synthesized,
        cycles=20,  # each cycle synthesizes a sentence before its cancel: a model run
    )
]
