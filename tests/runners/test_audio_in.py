"""Audio input through real devices: a PulseAudio null sink is the speaker, its monitor the
microphone. Also the helpers the other ASR tests use: speech from espeak-ng (generated here),
the test sink, playing into it and watching who records from it."""

from __future__ import annotations

import functools
import itertools
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from breeze.engine import BreezeError, CancelToken
from breeze.engine.audio import Pcm, read_wav, write_wav
from breeze.runners.audio_in import (
    Frame,
    Microphone,
    MicSource,
    PcmSource,
    input_devices,
    open_source,
)

RATE = 16000


@functools.cache
def _espeak(text: str, voice: str, speed: int) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text],
                       check=True, timeout=60)
        return read_wav(path, RATE).data


def silence(seconds: float) -> bytes:
    return b"\0\0" * int(seconds * RATE)


def speech(*sentences: str, voice: str = "en-us", speed: int = 150, gap_s: float = 1.0) -> Pcm:
    """Sentences spoken by espeak-ng with `gap_s` of silence around each, PCM16 at 16 kHz."""
    parts = [silence(0.5)]
    for sentence in sentences:
        parts += [_espeak(sentence, voice, speed), silence(gap_s)]
    return Pcm(b"".join(parts), RATE)


_sinks = itertools.count()


@pytest.fixture(scope="module")
def asr_sink(null_sink) -> Iterator[str]:
    """A null sink of this module's own whose monitor is the default microphone (PULSE_SOURCE),
    so that nothing else playing on the machine leaks into what the tests hear."""
    name = f"breeze_asr_{os.getpid()}_{next(_sinks)}"
    module = subprocess.run(
        ["pactl", "load-module", "module-null-sink", f"sink_name={name}", "rate=48000"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    saved = os.environ.get("PULSE_SOURCE")
    os.environ["PULSE_SOURCE"] = f"{name}.monitor"
    try:
        yield name
    finally:
        if saved is None:
            del os.environ["PULSE_SOURCE"]
        else:
            os.environ["PULSE_SOURCE"] = saved
        subprocess.run(["pactl", "unload-module", module], check=True)


def play(pcm: Pcm, path: Path, sink: str) -> subprocess.Popen[bytes]:
    """Play into the sink (what its monitor, the microphone, then hears)."""
    write_wav(path, pcm.data, pcm.sample_rate)
    return subprocess.Popen(["paplay", f"--device={sink}", str(path)])


def recording_streams(sink: str) -> int:
    """How many streams record from the sink's monitor."""
    def short(kind: str) -> list[list[str]]:
        out = subprocess.run(["pactl", "list", "short", kind], capture_output=True, text=True,
                             check=True).stdout
        return [line.split("\t") for line in out.splitlines()]

    source = next(row[0] for row in short("sources") if row[1] == f"{sink}.monitor")
    return sum(row[1] == source for row in short("source-outputs"))


def no_recording_left(sink: str, timeout: float = 3.0) -> bool:
    """True once nothing records from the sink. Polled: PulseAudio drops a closed stream a
    moment later; a microphone left open stays."""
    deadline = time.monotonic() + timeout
    while recording_streams(sink):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def tone(seconds: float, freq: float = 440.0, rate: int = 48000) -> Pcm:
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.5 * np.sin(2 * math.pi * freq * t) * 32767).astype("<i2")
    return Pcm(samples.tobytes(), rate)


def peak_hz(pcm: bytes, rate: int) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def read_frames(mic: Microphone, count: int, timeout: float = 15.0) -> list[Frame]:
    frames: list[Frame] = []
    deadline = time.monotonic() + timeout
    while len(frames) < count and time.monotonic() < deadline:
        frame = mic.read(0.5)
        if frame is not None:
            frames.append(frame)
    return frames


def record_while_playing(mic: Microphone, pcm: Pcm, tmp_path: Path, sink: str) -> list[Frame]:
    """Some silence, then `pcm` played into the sink, then silence again."""
    blocks = int(pcm.duration_ms / mic.block_ms)
    with mic:
        frames = read_frames(mic, 3)
        player = play(pcm, tmp_path / "tone.wav", sink)
        frames += read_frames(mic, blocks)
        player.wait(timeout=15)
        frames += read_frames(mic, 6)
    return frames


def test_the_microphone_hears_what_the_sink_plays(asr_sink, tmp_path):
    mic = Microphone("pulse", RATE)
    frames = record_while_playing(mic, tone(1.0), tmp_path, asr_sink)
    assert mic.capture_rate == RATE and mic.device_name == "pulse"
    assert all(f.sample_rate == RATE and len(f.pcm) == 2 * RATE // 10 for f in frames)
    starts = [f.start_ms for f in frames]
    assert starts == [100.0 * i for i in range(len(frames))]
    loud = [f for f in frames if f.level_dbfs > -15]
    assert len(loud) >= 6, [f.level_dbfs for f in frames]
    assert min(f.level_dbfs for f in frames) < -60  # silence before and after the tone
    assert abs(peak_hz(b"".join(f.pcm for f in loud), RATE) - 440) < 15


def test_a_device_rate_the_model_does_not_use_is_resampled(asr_sink, tmp_path):
    mic = Microphone("default", RATE, device_rate=44100, block_ms=50)
    frames = record_while_playing(mic, tone(1.0, freq=1000), tmp_path, asr_sink)
    assert mic.capture_rate == 44100
    assert all(f.sample_rate == RATE for f in frames)
    assert all(abs(len(f.pcm) / 2 - 800) <= 1 for f in frames)  # 50 ms at 16 kHz
    loud = [f for f in frames if f.level_dbfs > -15]
    assert abs(peak_hz(b"".join(f.pcm for f in loud), RATE) - 1000) < 20


def test_a_reader_seconds_behind_loses_none_of_the_audio(asr_sink, tmp_path):
    """A busy reader (an event loop held up for a few seconds) gets every block late, but
    gets them all: the user's words are not lost."""
    mic = Microphone("pulse", RATE, block_ms=20)
    with mic:
        assert read_frames(mic, 1)
        play(tone(2.5), tmp_path / "tone.wav", asr_sink).wait(timeout=15)
        time.sleep(1.0)  # the reader is busy: more than 3 s of audio waits for it
        caught_up = time.perf_counter()
        frames: list[Frame] = []
        while not frames or frames[-1].captured_at < caught_up:
            frame = mic.read(1.0)
            assert frame is not None
            frames.append(frame)
    gaps = [b.captured_at - a.captured_at for a, b in zip(frames, frames[1:], strict=False)]
    assert max(gaps) < 0.1, "blocks were dropped"
    loud = [f for f in frames if f.level_dbfs > -15]
    assert len(loud) * 0.02 >= 2.3, len(loud)


async def test_async_iteration_yields_frames_until_closed(asr_sink):
    mic = Microphone(None, RATE).open()
    frames = []
    async for frame in mic:
        frames.append(frame)
        if len(frames) == 5:
            mic.close()
    assert len(frames) >= 5 and not mic.is_open
    mic.close()  # closing twice is harmless


@pytest.mark.parametrize("device", ["no-such-microphone", 999, "999"])
def test_an_unknown_device_is_e501(null_sink, device):
    with pytest.raises(BreezeError) as excinfo:
        Microphone(device, RATE).open()
    assert excinfo.value.error.code == "E501"


def test_no_audio_system_at_all_is_e501_at_once():
    """With no PulseAudio server PortAudio sees no device: an error, never a hang."""
    code = (
        "from breeze.engine import BreezeError\n"
        "from breeze.runners.audio_in import Microphone\n"
        "try:\n    Microphone().open()\nexcept BreezeError as e:\n    print(e.error.code)\n"
    )
    env = {**os.environ, "PULSE_SERVER": "unix:/nonexistent/pulse"}
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=30, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "E501", out.stderr
    assert time.monotonic() - started < 15


def test_input_devices_lists_the_default(null_sink):
    devices = input_devices()
    assert {"pulse", "default"} <= {d["name"] for d in devices}
    assert sum(d["default"] for d in devices) == 1


def test_a_mic_source_stops_after_max_seconds_and_closes(asr_sink):
    source = open_source({"microphone": "pulse"}, {"max_seconds": 0.5}, RATE)
    assert isinstance(source, MicSource)
    assert recording_streams(asr_sink) == 1
    frames = list(source.frames(CancelToken()))
    source.close()
    assert len(frames) == 5 and source.finish_reason == "length"
    assert not source.microphone.is_open and no_recording_left(asr_sink)
    assert source.info() == {"input": "microphone", "device": "pulse", "capture_rate": RATE}


def test_a_mic_source_stops_when_cancelled(asr_sink):
    source = open_source({"microphone": ""}, {}, RATE)
    token = CancelToken()
    frames = []
    for frame in source.frames(token):
        frames.append(frame)
        if len(frames) == 3:
            token.cancel()
    source.close()
    assert len(frames) == 3


def test_a_muted_mic_source_sends_silence_until_unmuted(asr_sink, tmp_path):
    mute = threading.Event()
    mute.set()
    source = open_source({"microphone": "pulse", "mute": mute}, {}, RATE)
    player = play(tone(4.0), tmp_path / "tone.wav", asr_sink)
    frames: list[Frame] = []
    try:
        for frame in source.frames(CancelToken()):
            frames.append(frame)
            if frame.start_ms >= 1500:
                mute.clear()
            if frame.start_ms >= 3000:
                break
    finally:
        source.close()
        player.wait(timeout=15)
    muted = [f for f in frames if f.start_ms < 1500]
    heard = [f for f in frames if f.start_ms >= 2000]
    assert muted and all(f.pcm == bytes(len(f.pcm)) and f.level_dbfs == -120.0 for f in muted)
    assert sum(f.level_dbfs > -15 for f in heard) >= 5, [f.level_dbfs for f in heard]
    assert [f.start_ms for f in frames] == [100.0 * i for i in range(len(frames))]


def test_pcm_bytes_are_resampled_and_chunked():
    pcm = tone(1.05, rate=44100)
    source = open_source({"audio": pcm.data}, {"sample_rate": 44100, "chunk_ms": 200}, RATE)
    assert isinstance(source, PcmSource)
    frames = list(source.frames(CancelToken()))
    assert source.total_chunks == len(frames) == 6
    assert [f.start_ms for f in frames] == [0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]
    assert sum(len(f.pcm) for f in frames) == 2 * 16800
    assert source.head(0.5) == b"".join(f.pcm for f in frames)[: RATE]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"audio": b""}, "empty"),
        ({"audio": b"\x00\x01\x02"}, "odd"),
        ({"audio": "not bytes"}, "must be PCM16 bytes"),
        ({}, "needs one input"),
        ({"audio": b"\0\0", "microphone": ""}, "needs one input"),
        ({"microphone": 1.5}, "device name or index"),
    ],
)
def test_bad_inputs_are_e400(inputs, message):
    with pytest.raises(BreezeError, match=message) as excinfo:
        open_source(inputs, {}, RATE)
    assert excinfo.value.error.code == "E400"

