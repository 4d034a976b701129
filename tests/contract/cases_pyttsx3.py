"""The pyttsx3 runner (espeak-ng in its worker process) joins the contract suite."""

from __future__ import annotations

from collections.abc import Callable

from breeze.engine import Capability, InferenceRequest, Runner

from .cases import ContractCase

SENTENCES = (
    "The morning was quiet. Birds sang in the old oak tree. A cat watched them from the "
    "window. Then the rain began to fall. "
)


def _runner() -> Runner:
    from breeze.runners.pyttsx3_tts import Pyttsx3Runner

    return Pyttsx3Runner()


def _samples_synthesized(runner: Runner) -> int:
    """Audio samples the worker process has produced: it produces none unless it works."""
    return int(runner.samples_synthesized)  # type: ignore[attr-defined]


def _say(text: str, **params: object) -> Callable[[], InferenceRequest]:
    return lambda: InferenceRequest({"text": text}, params, capability=Capability.TTS)


CASES = [
    ContractCase(
        id="pyttsx3-espeak",
        make_runner=_runner,
        capability=Capability.TTS,
        request=_say(SENTENCES),
        long_request=_say(SENTENCES * 25),  # about three minutes of speech
        bad_request=_say("Hello.", voice="no-such-voice"),
        work_done=_samples_synthesized,
        cycles=60,  # each cancel kills the worker mid-sentence; the next cycle starts another
    )
]
