"""Audio as the engine passes it around: 16-bit little-endian mono PCM at a known rate.

Conversions from any WAV file (rate, sample width, channels), resampling, levels and WAV
writing. Pure computation: devices live in `runners/audio_in.py` and `runners/audio_out.py`.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import BreezeError

__all__ = ["Pcm", "dbfs", "read_wav", "resample", "to_pcm16_mono", "wav_bytes", "write_wav"]


@dataclass(frozen=True, slots=True)
class Pcm:
    """PCM16 mono audio."""

    data: bytes
    sample_rate: int

    @property
    def duration_ms(self) -> float:
        return 1000.0 * len(self.data) / 2 / self.sample_rate

    def samples(self) -> np.ndarray:
        return np.frombuffer(self.data, dtype="<i2")


def to_pcm16_mono(samples: np.ndarray, channels: int = 1) -> bytes:
    """Float (-1..1) or integer samples, interleaved channels, to PCM16 mono bytes."""
    if samples.dtype.kind == "f":
        floats = samples.astype(np.float64)
    elif samples.dtype == np.uint8:  # 8-bit WAV is unsigned
        floats = (samples.astype(np.float64) - 128.0) / 128.0
    else:
        floats = samples.astype(np.float64) / float(2 ** (8 * samples.dtype.itemsize - 1))
    if channels > 1:
        floats = floats[: len(floats) // channels * channels].reshape(-1, channels).mean(axis=1)
    return (np.clip(floats, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def resample(pcm: bytes, rate_in: int, rate_out: int) -> bytes:
    """Linear-interpolation resampling of PCM16 mono (good enough for speech models)."""
    if rate_in == rate_out or not pcm:
        return pcm
    src = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    n_out = max(1, int(round(len(src) * rate_out / rate_in)))
    positions = np.arange(n_out) * (rate_in / rate_out)
    out = np.interp(positions, np.arange(len(src)), src)
    return np.clip(out, -32768, 32767).round().astype("<i2").tobytes()


def read_wav(source: str | Path | bytes, rate: int | None = None) -> Pcm:
    """A WAV file of any rate, width (8/16/24/32-bit) and channel count, as PCM16 mono,
    resampled to `rate` when given. A file that is not WAV is an E400 error."""
    try:
        handle = wave.open(io.BytesIO(source) if isinstance(source, bytes) else str(source))
    except FileNotFoundError:
        raise BreezeError("E501", f"audio file {source!s} does not exist") from None
    except IsADirectoryError:
        raise BreezeError("E400", f"{source!s} is a directory, not a WAV file") from None
    except (wave.Error, EOFError) as exc:
        name = "the audio" if isinstance(source, bytes) else str(source)
        reason = str(exc) or "it ends before its WAV header does"
        if isinstance(exc, wave.Error) and "RIFF" in reason:
            reason = "it does not start with a RIFF/WAVE header"
        raise BreezeError("E400", f"{name} is not a PCM WAV file: {reason}") from None
    with handle:
        width, channels, frame_rate = (
            handle.getsampwidth(), handle.getnchannels(), handle.getframerate()
        )
        raw = handle.readframes(handle.getnframes())
    if frame_rate <= 0 or channels <= 0:
        raise BreezeError("E400", f"bad WAV header: {frame_rate} Hz, {channels} channels")
    samples = _decode(raw, width)
    pcm = to_pcm16_mono(samples, channels)
    if rate is not None and rate != frame_rate:
        return Pcm(resample(pcm, frame_rate, rate), rate)
    return Pcm(pcm, frame_rate)


def _decode(raw: bytes, width: int) -> np.ndarray:
    if width == 1:
        return np.frombuffer(raw, dtype=np.uint8)
    if width == 2:
        return np.frombuffer(raw, dtype="<i2")
    if width == 3:  # 24-bit: widen to 32-bit
        b = np.frombuffer(raw[: len(raw) // 3 * 3], dtype=np.uint8).reshape(-1, 3)
        wide = (b[:, 0].astype(np.int32) | (b[:, 1].astype(np.int32) << 8)
                | (b[:, 2].astype(np.int32) << 16))
        return (np.where(wide & 0x800000, wide - 0x1000000, wide) << 8).astype(np.int32)
    if width == 4:
        return np.frombuffer(raw, dtype="<i4")
    raise BreezeError("E400", f"unsupported WAV sample width: {width} bytes")


def wav_bytes(pcm: bytes, sample_rate: int, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm)
    return buffer.getvalue()


def write_wav(path: str | Path, pcm: bytes, sample_rate: int, channels: int = 1) -> None:
    Path(path).write_bytes(wav_bytes(pcm, sample_rate, channels))


def dbfs(pcm: bytes) -> float:
    """RMS level of PCM16 in dB relative to full scale (-120 for silence)."""
    if len(pcm) < 2:
        return -120.0
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64)
    rms = float(np.sqrt(np.mean(samples**2))) / 32768.0
    return round(20 * np.log10(rms), 1) if rms > 1e-6 else -120.0
