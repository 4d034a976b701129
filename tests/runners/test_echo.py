"""Breeze's own voice taken out of what the microphone hears: WebRTC's echo canceller on a
known echo path, and the duplex devices on the null sink, whose monitor hears everything
Breeze plays (and a second voice played into it: the user)."""

from __future__ import annotations

import asyncio

import numpy as np

from breeze.engine.audio import Pcm, dbfs
from breeze.runners._echo import ONSET_MUTE_MS, EchoCanceller, _Lately, _Sounded
from breeze.runners._vad import speech_probabilities
from breeze.runners.duplex import RATE, Duplex, voice_activity
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


def in_a_room(samples: np.ndarray) -> np.ndarray:
    """As a microphone hears it across a room: the sound and its reflections off the walls
    (a microphone on a lossless path hears an exact copy, which the canceller treats apart)."""
    reflections = np.zeros(int(0.05 * RATE), np.float32)
    for delay_ms, gain in ((0, 0.6), (7, 0.4), (13, -0.3), (23, 0.25), (41, -0.15)):
        reflections[delay_ms * RATE // 1000] = gain
    return np.convolve(samples, reflections)[: len(samples)].astype(np.float32)


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


def test_after_a_quiet_spell_what_is_captured_when_breeze_starts_to_sound_is_silenced():
    """With device times, the mute goes with when Breeze's first words are heard, however
    early the canceller is given them."""
    breeze = np.concatenate([np.zeros(RATE, np.float32), clip("0880")])
    heard = echo_of(breeze, delay_s=0.01)
    user = clip("0930")[: RATE // 2]  # the user, just before Breeze starts
    heard[RATE // 2:RATE] += user
    canceller, at, ahead = EchoCanceller(RATE), 1000.0, 10  # the player fills 200 ms ahead
    out = []
    for n, i in enumerate(range(0, len(breeze) - BLOCK, BLOCK)):
        if n == 0:
            for k in range(ahead):
                canceller.played(breeze[k * BLOCK:(k + 1) * BLOCK].astype("<i2").tobytes(),
                                 at + k * BLOCK / RATE)
        j = i + ahead * BLOCK
        canceller.played(breeze[j:j + BLOCK].astype("<i2").tobytes(), at + j / RATE)
        out.append(canceller.clean(heard[i:i + BLOCK].astype("<i2").tobytes(), at + i / RATE))
    samples = np.frombuffer(b"".join(out), "<i2")
    onset = RATE  # Breeze starts to sound after a second of silence
    assert not samples[onset:onset + ONSET_MUTE_MS * RATE // 1000].any()
    before = samples[RATE // 2:onset - RATE // 10]
    assert level(before) > level(user[: len(before)]) - 3.0, "the user before it was lost"


async def test_breeze_on_the_null_sink_hears_the_user_and_not_itself(asr_sink, tmp_path,
                                                                    monkeypatch):
    """The monitor is a perfect echo path: every sample Breeze plays comes back."""
    monkeypatch.setenv("PULSE_SINK", asr_sink)  # Breeze speaks into the sink it hears
    breeze_voice = clip("0920")
    with Duplex() as duplex:
        heard: list[bytes] = []

        async def listen() -> None:
            async for pcm in duplex.frames():
                heard.append(pcm)

        listening = asyncio.create_task(listen())
        # as in a conversation, the devices run a while before Breeze first speaks (a sound
        # server starts a new stream late, and then no device time can be trusted)
        duplex.player.play(bytes(2 * RATE), RATE)
        await duplex.player.drain()
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
    over, cut_in = b"".join(heard[alone:]), False
    with voice_activity() as detector:
        for i in range(0, len(over), 2 * BLOCK):
            detector.feed(over[i:i + 2 * BLOCK])
            cut_in = cut_in or detector.in_speech
    assert cut_in, "the user speaking over Breeze was not heard long enough to cut in"


def test_a_microphone_that_hears_nothing_but_what_sounded_is_told_from_a_voice_over_it():
    """A sound server's monitor of the output picked as the microphone (or the null sink): an
    echo path with no loss, where the canceller now and then lets whole words through."""
    breeze, user = clip("0920")[RATE:3 * RATE], clip("0880")[RATE:2 * RATE]
    sounded = _Sounded(RATE)
    sounded.add(100.0, breeze.astype("<i2").tobytes())

    def copies(heard: np.ndarray) -> list[bool]:  # heard 30 ms later than the times say
        lately, copies = _Lately(RATE), []
        for i in range(0, RATE, BLOCK):
            lately.add(heard[i:i + BLOCK].astype("<i2").tobytes(), 100.53 + i / RATE)
            if i >= RATE // 10 and level(heard[i:i + BLOCK]) > -50.0:
                copies.append(sounded.is_copy(lately))
        return copies

    echo = breeze[RATE // 2:3 * RATE // 2]  # what sounded from 100.5 s on, heard at 100.53
    assert all(copies(echo))
    assert all(copies(0.3 * echo))  # at any level
    assert not any(copies(user))
    as_loud = user * np.sqrt(np.mean(echo ** 2) / np.mean(user ** 2))
    over = copies(np.clip(echo + as_loud, -32768, 32767))
    assert sum(over) < len(over) / 4, "the user speaking over Breeze was taken for the copy"


def test_a_copy_of_what_sounded_is_taken_out_and_a_voice_over_it_stays():
    """What the canceller let through whole: the copy goes, the user's voice does not."""
    breeze, user = clip("0880")[RATE:2 * RATE], clip("0930")[RATE:RATE + RATE // 10]
    # heard half a second in, 40 ms after it sounded (device times are that far off)
    echo = 0.7 * breeze[int(0.46 * RATE):int(0.46 * RATE) + RATE // 10]

    def taken_out(heard: np.ndarray) -> np.ndarray:
        sounded = _Sounded(RATE)
        sounded.add(100.0, breeze.astype("<i2").tobytes())
        out = [sounded.take_out(heard[i:i + BLOCK].astype("<i2").tobytes(), 100.5 + i / RATE)
               for i in range(0, len(heard), BLOCK)]
        return np.frombuffer(b"".join(out), "<i2").astype(np.float64)

    judged = slice(RATE // 20, None)  # once 50 ms of it are heard
    assert not taken_out(echo)[judged].any()
    assert np.array_equal(taken_out(user)[judged], user.astype("<i2")[judged])
    left = taken_out(echo + user)[judged]  # not much like the copy: the user's voice stays
    assert level(left) >= level(user[judged]) - 3.0


def test_with_nothing_played_the_microphone_passes_through():
    user = clip("0930")
    out = run(EchoCanceller(RATE), np.zeros_like(user), user)
    assert level(out) > level(user[: len(out)]) - 3.0


def test_played_audio_meets_the_microphone_by_time_not_by_count():
    """An output stream that underruns or restarts hands some audio over twice, so the n-th
    block played no longer goes with the n-th heard. With the times of both, each played
    block reaches the canceller as the microphone gets to it, once, and the echo goes."""
    breeze = np.concatenate([np.zeros(RATE, np.float32), clip("0880")])
    heard = in_a_room(echo_of(breeze, delay_s=0.02, gain=1.0))

    def cleaned(with_times: bool) -> np.ndarray:
        canceller, out = EchoCanceller(RATE), []
        starts = range(0, len(heard) - BLOCK, BLOCK)
        for n, i in enumerate(starts):
            if n % 25 == 24:  # a restart: the last 60 ms are handed over again
                for j in range(i - 3 * BLOCK, i, BLOCK):
                    canceller.played(breeze[j:j + BLOCK].astype("<i2").tobytes(), j / RATE)
            canceller.played(breeze[i:i + BLOCK].astype("<i2").tobytes(), i / RATE)
            out.append(canceller.clean(heard[i:i + BLOCK].astype("<i2").tobytes(),
                                       i / RATE if with_times else None))
        return np.frombuffer(b"".join(out), dtype="<i2").astype(np.float32)

    speech = slice(int(1.5 * RATE), len(heard) - RATE)
    by_time, by_count = cleaned(True), cleaned(False)
    assert max(speech_probabilities(by_time[speech].astype("<i2").tobytes())) < 0.5
    assert level(by_time[speech]) < level(heard[speech]) - 40.0
    assert level(by_count[speech]) > level(by_time[speech]) + 20.0  # what the times are for
