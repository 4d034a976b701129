"""Breeze's own voice taken out of what the microphone hears: WebRTC's echo canceller on a
known echo path, and the duplex devices on the null sink, whose monitor hears everything
Breeze plays (and a second voice played into it: the user)."""

from __future__ import annotations

import asyncio

import numpy as np

from breeze.engine.audio import Pcm, dbfs
from breeze.runners._echo import ONSET_MUTE_MS, EchoCanceller
from breeze.runners._vad import speech_probabilities
from breeze.runners.duplex import RATE, Duplex
from tests.runners import test_audio_in
from tests.runners.test_audio_in import play
from tests.runners.test_whisper_speech import human_speech

asr_sink = test_audio_in.asr_sink  # fixture: a null sink of the module's own
BLOCK = RATE // 50  # 20 ms


def clip(suffix: str) -> np.ndarray:
    pcm = next(c.pcm for c in human_speech() if c.name.endswith(suffix))
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32)


def run(canceller: EchoCanceller, played: np.ndarray, heard: np.ndarray) -> np.ndarray:
    """Feed both streams block by block, as the devices would; what comes out."""
    out = []
    for i in range(0, min(len(played), len(heard)) - BLOCK, BLOCK):
        canceller.played(played[i:i + BLOCK].astype("<i2").tobytes())
        out.append(canceller.clean(heard[i:i + BLOCK].astype("<i2").tobytes()))
    return np.frombuffer(b"".join(out), dtype="<i2").astype(np.float32)


def level(samples: np.ndarray) -> float:
    return dbfs(samples.astype("<i2").tobytes())


def echo_of(samples: np.ndarray, delay_s: float = 0.08, gain: float = 0.6) -> np.ndarray:
    delay = int(delay_s * RATE)
    return np.concatenate([np.zeros(delay, np.float32), samples[:-delay] * gain])


def test_the_echo_is_taken_out_and_the_users_voice_stays():
    breeze, user = clip("0870"), clip("0930")
    heard = echo_of(breeze)
    start = 2 * RATE  # the user speaks over Breeze from 2 s on
    heard[start:start + len(user)] += user[: len(heard) - start]
    out = run(EchoCanceller(RATE), breeze, np.clip(heard, -32768, 32767))
    echo_only = slice(int(0.5 * RATE), start)
    assert level(out[echo_only]) < level(heard[echo_only]) - 40.0
    both = slice(start, start + len(user) - RATE // 2)
    assert level(out[both]) > level(user[: both.stop - start]) - 12.0, "the user was lost"
    assert max(speech_probabilities(out[echo_only].astype("<i2").tobytes())) < 0.5


def test_the_first_moment_after_a_quiet_spell_is_silenced():
    breeze = np.concatenate([np.zeros(RATE, np.float32), clip("0880")])
    out = run(EchoCanceller(RATE), breeze, echo_of(breeze))
    onset = RATE  # Breeze starts speaking after a second of silence
    muted = out[onset:onset + ONSET_MUTE_MS * RATE // 1000]
    assert not muted.any()


async def test_breeze_on_the_null_sink_hears_the_user_and_not_itself(asr_sink, tmp_path):
    """The monitor is a perfect echo path: every sample Breeze plays comes back."""
    breeze_voice = clip("0920")
    with Duplex() as duplex:
        heard: list[bytes] = []

        async def listen() -> None:
            async for pcm in duplex.frames():
                heard.append(pcm)

        listening = asyncio.create_task(listen())
        duplex.player.play(breeze_voice.astype("<i2").tobytes(), RATE)
        await asyncio.sleep(len(breeze_voice) / RATE / 2)
        alone = len(heard)
        user = play(Pcm(clip("0880").astype("<i2").tobytes(), RATE), tmp_path / "u.wav",
                    asr_sink)
        await asyncio.to_thread(user.wait, 30)
        await duplex.player.drain()
        duplex.microphone.close()
        await listening
    breeze_alone = b"".join(heard[:alone])
    assert dbfs(b"".join(heard)) > -60.0, "the microphone heard nothing"
    assert max(speech_probabilities(breeze_alone)) < 0.5, "Breeze heard its own voice"
    over = b"".join(heard[alone:])
    assert sum(p >= 0.5 for p in speech_probabilities(over)) >= 20, "the user was not heard"


def test_with_nothing_played_the_microphone_passes_through():
    user = clip("0930")
    out = run(EchoCanceller(RATE), np.zeros_like(user), user)
    assert level(out) > level(user[: len(out)]) - 3.0
