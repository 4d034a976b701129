"""Playback through real devices: a PulseAudio null sink plays, its monitor is recorded.

The `tts_sink` fixture and `MonitorRecorder` are also used by the TTS, speech pipeline and
`breeze say` tests.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import sounddevice as sd

from breeze.engine import BreezeError
from breeze.runners.audio_out import Player, output_devices, resolve_output_device

RATE = 22050
ROOT = Path(__file__).resolve().parents[2]


class MonitorRecorder:
    """Records what the null sink plays (its monitor is the default source) at 16 kHz.

    The null sink hands its monitor audio over late (its latency is large), so `wait_quiet`
    waits until the recording ends in a long silence before the recording is read. The sink
    must be running (a player open) for the monitor to deliver anything."""

    rate = 16000

    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []
        self.stream = sd.InputStream(
            device="pulse", channels=1, samplerate=self.rate, dtype="int16",
            callback=lambda data, frames, t, status: self.blocks.append(data[:, 0].copy()),
        )

    def __enter__(self) -> MonitorRecorder:
        """Start, and wait for the first audio: a suspended source takes a second or two."""
        self.stream.start()
        deadline = time.monotonic() + 15
        while not self.blocks and time.monotonic() < deadline:
            time.sleep(0.005)
        assert self.blocks, "the monitor delivered nothing"
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.stop()
        self.stream.close()

    def samples(self) -> np.ndarray:
        return np.concatenate(self.blocks) if self.blocks else np.zeros(0, dtype=np.int16)

    def loud(self, window_ms: int = 10, threshold: float = 300.0) -> np.ndarray:
        """One bool per `window_ms`: whether that window holds sound (RMS above threshold)."""
        samples = self.samples().astype(np.float64)
        size = self.rate * window_ms // 1000
        frames = samples[: len(samples) // size * size].reshape(-1, size)
        return np.sqrt((frames**2).mean(axis=1)) > threshold

    def spans(self, window_ms: int = 10, bridge_ms: int = 0) -> list[tuple[int, int]]:
        """(start, end) in ms of each sound; silences up to `bridge_ms` are bridged."""
        loud = self.loud(window_ms)
        spans: list[tuple[int, int]] = []
        for i in np.flatnonzero(loud):
            start = int(i) * window_ms
            if spans and start - spans[-1][1] <= bridge_ms:
                spans[-1] = (spans[-1][0], start + window_ms)
            else:
                spans.append((start, start + window_ms))
        return spans

    def wait_quiet(self, quiet_ms: int = 1200, timeout_s: float = 12.0) -> None:
        """Until sound was recorded and has been followed by `quiet_ms` of silence."""
        deadline = time.monotonic() + timeout_s
        windows = quiet_ms // 10
        while time.monotonic() < deadline:
            loud = self.loud()
            if loud.any() and not loud[-windows:].any() and len(loud) > windows:
                return
            time.sleep(0.1)
        raise AssertionError("the recording did not go quiet")

    def transcript(self) -> str:
        """What pocketsphinx's US English model hears in the recording."""
        from pocketsphinx import Decoder

        decoder = Decoder()
        decoder.start_utt()
        decoder.process_raw(self.samples().tobytes(), full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        return hypothesis.hypstr if hypothesis is not None else ""


def tone(seconds: float, freq: float = 440.0, rate: int = RATE) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * 12000).astype("<i2").tobytes()


def warm(player: Player) -> Player:
    """Wake the sink (a suspended null sink takes a second or two) before timing anything."""
    player.play(bytes(int(0.2 * RATE) * 2))
    assert player.wait(timeout=10)
    player.cancel()  # what comes next is new: no gap after the warm-up
    return player


@pytest.fixture
def tts_sink(null_sink, monkeypatch):
    """A null sink of these tests' own (beside the shared one, which other test suites may
    play into at the same time), made the default speaker and microphone through the
    PULSE_SINK and PULSE_SOURCE variables that every PulseAudio client honours."""
    sinks = subprocess.run(["pactl", "list", "short", "sinks"], capture_output=True,
                           text=True, check=True, timeout=30).stdout
    if "breeze_tts\t" not in sinks:
        subprocess.run(["pactl", "load-module", "module-null-sink", "sink_name=breeze_tts",
                        "sink_properties=device.description=BreezeTTS", "rate=48000"],
                       check=True, capture_output=True, timeout=30)
    monkeypatch.setenv("PULSE_SINK", "breeze_tts")
    monkeypatch.setenv("PULSE_SOURCE", "breeze_tts.monitor")
    # where the server and its cookie are, for subprocesses whose XDG dirs are elsewhere
    info = subprocess.run(["pactl", "info"], capture_output=True, text=True, check=True,
                          timeout=30).stdout
    server = re.search(r"^Server String: (.+)$", info, re.MULTILINE)
    if server:
        monkeypatch.setenv("PULSE_SERVER", server.group(1).strip())
    cookie = Path.home() / ".config" / "pulse" / "cookie"
    if cookie.exists():
        monkeypatch.setenv("PULSE_COOKIE", str(cookie))
    return {"sink": "breeze_tts", "monitor": "breeze_tts.monitor"}


@pytest.fixture
def player(tts_sink):
    with Player("pulse") as player:
        yield warm(player)


def test_devices_are_chosen_by_index_name_or_part_of_a_name(tts_sink):
    names = {d["name"]: d["index"] for d in output_devices()}
    assert "pulse" in names
    assert resolve_output_device("pulse") == names["pulse"]
    assert resolve_output_device(names["pulse"]) == names["pulse"]
    assert resolve_output_device(str(names["pulse"])) == names["pulse"]
    assert resolve_output_device("PULS") == names["pulse"]
    assert resolve_output_device(None) in names.values()


@pytest.mark.parametrize("device", ["no such speaker", 999])
def test_an_unknown_device_is_e501_listing_the_outputs(tts_sink, device):
    with pytest.raises(BreezeError) as caught:
        Player(device).open()
    assert caught.value.error.code == "E501"
    assert "pulse" in caught.value.error.message


def test_no_output_device_at_all_is_e501():
    """With PulseAudio out of reach PortAudio finds no device: a real machine without one."""
    code = (
        "from breeze.engine import BreezeError\n"
        "from breeze.runners.audio_out import Player\n"
        "try:\n    Player().open()\n"
        "except BreezeError as e:\n    print(e.error.code, e.error.message)\n"
    )
    env = {**os.environ, "PULSE_SERVER": "unix:/nonexistent/breeze"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=60, cwd=ROOT)
    assert out.stdout.startswith("E501 no audio output device"), out.stdout + out.stderr


def test_playback_reaches_the_device_with_the_expected_duration(player):
    with MonitorRecorder() as recorder:
        segment = player.play(tone(1.0))
        assert segment.end_ms - segment.start_ms == pytest.approx(1000, abs=1)
        assert player.wait(timeout=10)
        recorder.wait_quiet()
    spans = recorder.spans()
    assert len(spans) == 1, spans
    assert spans[0][1] - spans[0][0] == pytest.approx(1000, abs=40)
    assert player.played_ms >= segment.end_ms and player.pending_ms == 0


def test_segments_play_back_to_back_without_a_gap(player):
    with MonitorRecorder() as recorder:
        for freq in (330, 440, 550, 660):
            player.play(tone(0.4, freq))
        assert player.wait(timeout=10)
        recorder.wait_quiet()
    spans = recorder.spans()
    assert len(spans) == 1, f"silence between segments: {spans}"
    assert spans[0][1] - spans[0][0] == pytest.approx(1600, abs=50)
    assert list(player.gaps_ms) == []


def test_audio_that_comes_late_leaves_a_measured_gap(player):
    player.play(tone(0.2))
    assert player.wait(timeout=10)
    time.sleep(0.3)
    player.play(tone(0.2))
    assert player.wait(timeout=10)
    assert len(player.gaps_ms) == 1 and player.gaps_ms[0] >= 250


def test_other_rates_and_stereo_are_converted(player):
    mono16k = tone(0.5, rate=16000)
    stereo = np.repeat(np.frombuffer(tone(0.5), dtype="<i2"), 2).tobytes()
    first = player.play(mono16k, 16000)
    second = player.play(stereo, RATE, channels=2)
    assert first.end_ms - first.start_ms == pytest.approx(500, abs=1)
    assert second.end_ms - second.start_ms == pytest.approx(500, abs=1)


def test_cancel_silences_within_50_ms_and_drops_the_queue(player):
    with MonitorRecorder() as recorder:
        segment = player.play(tone(3.0))
        player.play(tone(3.0, 550))
        while player.played_ms < segment.start_ms + 800:
            time.sleep(0.001)
        heard_ms = player.played_ms - segment.start_ms
        player.cancel()
        assert player.pending_ms == 0
        time.sleep(0.5)
        player.play(tone(0.3, 880))  # still usable after a cancel
        assert player.wait(timeout=10)
        recorder.wait_quiet()
    spans = recorder.spans()
    assert len(spans) == 2, spans
    first = spans[0][1] - spans[0][0]
    assert first - heard_ms <= 50, f"sound went on {first - heard_ms:.0f} ms after cancel"
    assert first >= heard_ms - 60, "the recording lost the start of the tone"
    assert spans[1][1] - spans[1][0] == pytest.approx(300, abs=40)


async def test_drain_waits_for_the_sound_and_returns_on_cancel(player):
    segment = player.play(tone(0.5))
    start = time.perf_counter()
    await player.drain()
    assert player.played_ms >= segment.end_ms
    assert time.perf_counter() - start >= 0.4
    player.play(tone(5.0))
    asyncio.get_running_loop().call_later(0.2, player.cancel)
    start = time.perf_counter()
    await asyncio.wait_for(player.drain(), timeout=2)
    assert time.perf_counter() - start < 1.0


def test_close_stops_and_releases_the_device(tts_sink):
    player = warm(Player("pulse").open())
    player.play(tone(5.0))
    start = time.perf_counter()
    player.close()
    assert time.perf_counter() - start < 0.5
    assert player.pending_ms == 0 and player.wait(timeout=0.1)
