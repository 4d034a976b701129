"""Audio input for the ASR runners: the microphone and PCM bytes, as Frames of PCM16 mono.

This is the only module of `runners/` that imports sounddevice, and it does so lazily, so
listing runners needs no PortAudio. The sounddevice callback runs on PortAudio's thread: it
only copies the buffer into a bounded thread-safe queue; the reader converts channels and rate.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np

from breeze.engine import BreezeError, CancelToken, ParamSpec
from breeze.engine.audio import dbfs, resample, to_pcm16_mono
from breeze.engine.routing import Mute

__all__ = [
    "INPUT_PARAMS",
    "AudioSource",
    "Frame",
    "Microphone",
    "MicSource",
    "PcmSource",
    "input_devices",
    "open_source",
]

log = logging.getLogger("breeze.audio_in")

STALL_S = 3.0  # a microphone silent (no callbacks at all) this long is an error, not a hang
_QUEUE_S = 10.0  # audio kept for a reader that falls behind (a busy event loop); the oldest goes


@dataclass(frozen=True, slots=True)
class Frame:
    """A block of PCM16 mono audio and where it sits in the stream."""

    pcm: bytes
    sample_rate: int
    start_ms: float
    level_dbfs: float
    captured_at: float | None = None  # perf_counter when its first sample was captured

    @property
    def duration_ms(self) -> float:
        return 1000.0 * len(self.pcm) / 2 / self.sample_rate

    @property
    def end_ms(self) -> float:
        return self.start_ms + self.duration_ms


def _sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as exc:  # PortAudio itself is missing
        raise BreezeError("E501", f"no audio input: {exc} (install libportaudio2)") from None
    return sounddevice


def input_devices() -> list[dict[str, Any]]:
    """The input devices PortAudio sees: index, name, default_samplerate, default."""
    sd = _sounddevice()
    try:
        default = sd.query_devices(kind="input")["index"]
    except (ValueError, sd.PortAudioError):
        default = None
    return [
        {
            "index": info["index"],
            "name": info["name"],
            "default_samplerate": int(info["default_samplerate"]),
            "max_input_channels": info["max_input_channels"],
            "default": info["index"] == default,
        }
        for info in sd.query_devices()
        if info["max_input_channels"] > 0
    ]


def _device_spec(device: str | int | None) -> str | int | None:
    """'' and 'default' are the system default; a string of digits is an index."""
    if isinstance(device, str):
        device = device.strip()
        if device in ("", "default"):
            return None
        return int(device) if device.isdigit() else device
    return device


class Microphone:
    """Capture from an input device as Frames at `sample_rate`, by name, index or default.

    The device records mono at `sample_rate` when it can; otherwise at its own rate and
    channel count (or at `device_rate` when given), converted here. Use as a context manager
    or `open()`/`close()`; `read()` blocks up to a timeout; `async for` iterates the frames.
    While `mute` is set, what is captured is silence (Breeze's own voice must not be
    dictated): the stream's timing goes on, and an utterance in progress is finalized.
    """

    def __init__(
        self,
        device: str | int | None = None,
        sample_rate: int = 16000,
        *,
        block_ms: int = 100,
        device_rate: int | None = None,
        mute: Mute | None = None,
    ) -> None:
        self.device = device
        self.mute = mute
        self.sample_rate = sample_rate
        self.block_ms = block_ms
        self.device_rate = device_rate
        self.device_name = ""
        self._channels = 1
        self._rate = sample_rate
        self._position_ms = 0.0
        self._queue: queue.Queue[tuple[bytes, float]] = queue.Queue(
            max(1, round(_QUEUE_S * 1000 / block_ms)))
        self._stream: Any = None

    @property
    def capture_rate(self) -> int:
        """The rate the device actually records at."""
        return self._rate

    def open(self) -> Microphone:
        """Start capturing; E501 when there is no such input device or it cannot be opened."""
        sd = _sounddevice()
        info = self._input_device(sd)
        self.device_name = str(info["name"])
        stream = self._open_stream(sd, info)
        try:
            stream.start()
        except sd.PortAudioError as exc:
            stream.close()
            message = f"cannot start the microphone {self.device_name}: {exc}"
            raise BreezeError("E501", message) from None
        self._stream = stream
        return self

    def _open_stream(self, sd: Any, info: dict[str, Any]) -> Any:
        """Mono at our rate when the device takes it, else its own rate and channels.

        Each setting is tried by opening the stream: a format probe (check_input_settings)
        opens a stream of its own, which the ALSA PulseAudio plug-in may leave recording."""
        rates = [self.device_rate] if self.device_rate else list(dict.fromkeys(
            (self.sample_rate, int(info["default_samplerate"]))
        ))
        stereo = min(2, int(info["max_input_channels"]))
        failure: Exception | None = None
        for channels in dict.fromkeys((1, stereo)):
            for rate in rates:
                try:
                    stream = sd.RawInputStream(
                        samplerate=rate,
                        blocksize=max(1, rate * self.block_ms // 1000),
                        device=info["index"],
                        channels=channels,
                        dtype="int16",
                        callback=self._callback,
                    )
                except (ValueError, sd.PortAudioError) as exc:
                    failure = exc
                    continue
                self._channels, self._rate = channels, rate
                return stream
        message = f"cannot open the microphone {self.device_name} at {rates} Hz: {failure}"
        raise BreezeError("E501", message)

    def _input_device(self, sd: Any) -> dict[str, Any]:
        wanted = _device_spec(self.device)
        try:
            info = sd.query_devices(wanted, kind="input")
        except (ValueError, sd.PortAudioError) as exc:
            what = "no input device (microphone) found" if wanted is None else (
                f"no input device {wanted!r}"
            )
            raise BreezeError("E501", f"{what}: {exc}") from None
        return dict(info)

    def _callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        block = bytes(indata)  # PortAudio reuses its buffer after the callback returns
        if self.mute is not None and self.mute.is_set():
            block = bytes(len(block))  # muted as it is captured, however late it is read
        since = float(time_info.currentTime - time_info.inputBufferAdcTime)
        if not 0.0 < since < 2.0:  # a host API that gives no times: the block just ended
            since = frames / self._rate
        captured_at = time.perf_counter() - since
        while True:
            try:
                self._queue.put_nowait((block, captured_at))
                return
            except queue.Full:  # a reader this far behind: keep the newest audio
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    pass

    def read(self, timeout: float) -> Frame | None:
        """The next frame, or None when none arrived within `timeout` seconds."""
        try:
            raw, captured_at = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        pcm = raw
        if self._channels > 1:
            pcm = to_pcm16_mono(np.frombuffer(raw, dtype="<i2"), self._channels)
        pcm = resample(pcm, self._rate, self.sample_rate)
        frame = Frame(pcm, self.sample_rate, self._position_ms, dbfs(pcm), captured_at)
        self._position_ms = frame.end_ms
        return frame

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            stream.abort()  # stop at once: queued device buffers are not wanted
            stream.close()
        except Exception:  # a device that vanished must not hide the request's outcome
            log.warning("closing the microphone %s failed", self.device_name, exc_info=True)

    @property
    def is_open(self) -> bool:
        return self._stream is not None

    def __enter__(self) -> Microphone:
        return self.open()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __aiter__(self) -> AsyncIterator[Frame]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[Frame]:
        while self.is_open or not self._queue.empty():
            frame = await asyncio.to_thread(self.read, 0.1)
            if frame is not None:
                yield frame


class AudioSource:
    """Frames for a recognizer, and how the stream ended."""

    kind = ""
    total_chunks: int | None = None
    finish_reason = "stop"

    def frames(self, token: CancelToken) -> Iterator[Frame]:
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        return {"input": self.kind}

    def head(self, seconds: float) -> bytes:
        """The opening audio when it is known in advance (not for a live microphone)."""
        return b""

    def close(self) -> None:
        """Release the device, if any."""


class PcmSource(AudioSource):
    """PCM16 mono bytes at `rate_in`, resampled to `rate`, in chunks of `chunk_ms`."""

    kind = "audio"

    def __init__(self, audio: Any, rate_in: int, rate: int, chunk_ms: int) -> None:
        if not isinstance(audio, bytes | bytearray | memoryview):
            raise BreezeError("E400", f"'audio' must be PCM16 bytes, got {type(audio).__name__}")
        data = bytes(audio)
        if not data:
            raise BreezeError("E400", "the audio is empty")
        if len(data) % 2:
            raise BreezeError("E400", f"PCM16 has 2 bytes a sample; got an odd {len(data)} bytes")
        self.pcm = resample(data, rate_in, rate)
        self.rate = rate
        self.chunk_bytes = max(2, rate * chunk_ms // 1000 * 2)
        self.total_chunks = -(-len(self.pcm) // self.chunk_bytes)

    def head(self, seconds: float) -> bytes:
        return self.pcm[: int(seconds * self.rate) * 2]

    def frames(self, token: CancelToken) -> Iterator[Frame]:
        for offset in range(0, len(self.pcm), self.chunk_bytes):
            if token.cancelled:
                return
            pcm = self.pcm[offset : offset + self.chunk_bytes]
            yield Frame(pcm, self.rate, 1000.0 * offset / 2 / self.rate, dbfs(pcm))


class MicSource(AudioSource):
    """A live microphone until cancelled, or for `max_seconds` when given (then "length")."""

    kind = "microphone"

    def __init__(self, microphone: Microphone, max_seconds: float | None) -> None:
        self.microphone = microphone
        self.limit_ms = 1000.0 * max_seconds if max_seconds else None

    def info(self) -> dict[str, Any]:
        mic = self.microphone
        return {"input": self.kind, "device": mic.device_name, "capture_rate": mic.capture_rate}

    def frames(self, token: CancelToken) -> Iterator[Frame]:
        last = time.monotonic()
        while not token.cancelled:
            frame = self.microphone.read(0.05)
            if frame is None:
                if time.monotonic() - last > STALL_S:
                    raise BreezeError(
                        "E501", f"the microphone {self.microphone.device_name} sends no audio"
                    )
                continue
            last = time.monotonic()
            yield frame
            if self.limit_ms is not None and frame.end_ms >= self.limit_ms:
                self.finish_reason = "length"
                return

    def close(self) -> None:
        self.microphone.close()


INPUT_PARAMS = (  # what `open_source` reads from a request's params
    ParamSpec("sample_rate", int, 16000, 1000, 384000,
              description="sample rate of the 'audio' input bytes (PCM16 mono)"),
    ParamSpec("chunk_ms", int, 100, 10, 1000,
              description="audio fed to the recognizer at a time; smaller is livelier"),
    ParamSpec("max_seconds", float, None, 0.0, 86400.0,
              description="microphone: stop listening after this long"),
    ParamSpec("device_rate", int, None, 8000, 384000,
              description="microphone: record at this rate and resample"),
)


def open_source(inputs: Mapping[str, Any], params: Mapping[str, Any], rate: int) -> AudioSource:
    """The request's audio as frames at `rate`: 'audio' bytes (at params' sample_rate) or the
    'microphone' (a device name, index or '' for the default), optionally with a 'mute'
    (see Microphone). E400 for bad input."""
    chunk_ms = int(params.get("chunk_ms") or 100)
    if ("audio" in inputs) == ("microphone" in inputs):
        raise BreezeError("E400", "speech recognition needs one input: 'audio' or 'microphone'")
    if "audio" in inputs:
        return PcmSource(inputs["audio"], int(params.get("sample_rate") or rate), rate, chunk_ms)
    device = inputs["microphone"]
    if not isinstance(device, str | int) or isinstance(device, bool):
        raise BreezeError("E400", f"'microphone' must be a device name or index, got {device!r}")
    microphone = Microphone(
        device, rate, block_ms=chunk_ms, device_rate=params.get("device_rate"),
        mute=inputs.get("mute"),
    ).open()
    return MicSource(microphone, params.get("max_seconds"))
