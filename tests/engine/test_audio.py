import math
import struct
import wave

import numpy as np
import pytest

from breeze.engine import BreezeError
from breeze.engine.audio import dbfs, read_wav, resample, wav_bytes


def tone(rate: int, seconds: float = 0.5, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return 0.5 * np.sin(2 * math.pi * freq * t)


@pytest.mark.parametrize("width", [1, 2, 3, 4])
@pytest.mark.parametrize("channels", [1, 2])
def test_any_wav_becomes_pcm16_mono_at_the_rate_asked(tmp_path, width, channels):
    samples = tone(44100)
    path = tmp_path / "t.wav"
    ints = (samples * (2 ** (8 * width - 1) - 1)).astype(np.int64)
    frames = b""
    for value in ints:
        if width == 1:
            one = struct.pack("<B", int(value) + 128)
        else:
            one = int(value).to_bytes(width, "little", signed=True)
        frames += one * channels
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(44100)
        out.writeframes(frames)
    pcm = read_wav(path, rate=16000)
    assert pcm.sample_rate == 16000
    assert abs(pcm.duration_ms - 500) < 1
    assert abs(dbfs(pcm.data) - 20 * math.log10(0.5 / math.sqrt(2))) < 0.5


def test_resample_keeps_duration_and_pitch_energy():
    pcm = (tone(48000) * 32767).astype("<i2").tobytes()
    out = resample(pcm, 48000, 16000)
    assert len(out) // 2 == 8000
    assert abs(dbfs(out) - dbfs(pcm)) < 0.5


def test_wav_round_trip_and_bad_files(tmp_path):
    pcm = (tone(16000) * 32767).astype("<i2").tobytes()
    assert read_wav(wav_bytes(pcm, 16000)).data == pcm
    (tmp_path / "x.wav").write_text("not audio")
    with pytest.raises(BreezeError) as bad:
        read_wav(tmp_path / "x.wav")
    assert bad.value.error.code == "E400"
    with pytest.raises(BreezeError) as missing:
        read_wav(tmp_path / "missing.wav")
    assert missing.value.error.code == "E501"
    assert dbfs(b"\0\0" * 100) == -120.0
