"""The Whisper runner (the packaged tiny.en model, a Silero VAD) joins the contract suite on
real human speech (see tests/runners/test_whisper_speech.py)."""

from __future__ import annotations

from breeze.engine import Capability, InferenceRequest, Runner

from .cases import ContractCase


def _whisper_runner() -> Runner:
    from tests.runners.test_whisper_speech import loaded_whisper

    return loaded_whisper()  # the model is shared: loading it costs seconds


def _chunks_fed(runner: Runner) -> int:
    return int(runner.chunks_fed)  # type: ignore[attr-defined]


def _spoken(name: str, times: int) -> InferenceRequest:
    """A recording, after a second of silence: a cancel after the first result arrives
    before any decode has started."""
    from tests.runners.test_whisper_speech import RATE, human_speech

    pcm = next(c.pcm for c in human_speech() if c.name == name)
    pause = bytes(2 * RATE)
    return InferenceRequest({"audio": pause + (pcm + pause) * times})


CASES = [
    ContractCase(
        id="whisper-en",
        make_runner=_whisper_runner,
        capability=Capability.ASR,
        request=lambda: _spoken("goforward", 1),
        long_request=lambda: _spoken("goforward", 6),
        bad_request=lambda: InferenceRequest({"audio": b"\x01\x02\x03"}),
        work_done=_chunks_fed,
        cycles=10,  # each cycle opens a voice-activity detector
    )
]
