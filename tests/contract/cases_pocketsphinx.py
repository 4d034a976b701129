"""The pocketsphinx runner on the English model of its wheel joins the contract suite."""

from __future__ import annotations

from breeze.engine import Capability, InferenceRequest, Runner

from .cases import ContractCase


def _pocketsphinx_runner() -> Runner:
    from breeze.runners.pocketsphinx_asr import PocketsphinxRunner

    return PocketsphinxRunner()


def _chunks_fed(runner: Runner) -> int:
    return int(runner.chunks_fed)  # type: ignore[attr-defined]


def _english(times: int) -> InferenceRequest:
    from tests.runners.test_audio_in import speech
    from tests.runners.test_pocketsphinx import PHRASES

    return InferenceRequest({"audio": speech(*(PHRASES * times)).data})


CASES = [
    ContractCase(
        id="pocketsphinx-en",
        make_runner=_pocketsphinx_runner,
        capability=Capability.ASR,
        request=lambda: _english(1),
        long_request=lambda: _english(8),
        bad_request=lambda: InferenceRequest({"audio": b""}),
        work_done=_chunks_fed,
        cycles=20,  # each cycle primes the decoder on seconds of audio
    )
]
