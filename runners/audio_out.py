"""Audio output through sounddevice: one continuous stream fed from a queue.

Why one stream: opening a stream per sentence costs time and leaves gaps, and a device that
goes quiet may be suspended (waking a PulseAudio sink takes long). The stream's callback
pulls queued audio in order, sentence after sentence with no gap, and plays silence while
the queue is empty. Like python-sounddevice's asyncio examples, the callback only copies
buffers; everything else happens outside the audio thread.

The player keeps a timeline in milliseconds: `play()` returns where a piece of audio sits on
it, `played_ms` is how far playback has got, so a caller can tell which sentence is audible.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from breeze.engine import BreezeError
from breeze.engine.audio import resample, to_pcm16_mono

__all__ = ["Player", "Segment", "output_devices", "resolve_output_device"]

log = logging.getLogger("breeze.native.alsa")


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of queued audio on the player's timeline (ms since the player opened)."""

    start_ms: float
    end_ms: float
    mark: Any = None


def _sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as exc:  # the PortAudio library itself is missing
        raise BreezeError(
            "E501", f"no audio output: PortAudio is missing ({exc}); "
            "sudo apt-get install libportaudio2"
        ) from None
    _route_alsa_messages()
    return sounddevice


_alsa_handler: Any = None


def _route_alsa_messages() -> None:
    """alsa-lib prints underruns on stderr from the audio thread, over the user's terminal;
    its error handler sends them to the log instead (once per process)."""
    global _alsa_handler
    if _alsa_handler is not None:
        return
    path = ctypes.util.find_library("asound")
    # snd_lib_error_handler_t is variadic; its five fixed arguments are read as declared
    handler_type = ctypes.CFUNCTYPE(
        None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
    )

    def handler(file: bytes, line: int, function: bytes, err: int, fmt: bytes) -> None:
        log.debug("%s (%s:%d): %s", function.decode(errors="replace"),
                  file.decode(errors="replace"), line, fmt.decode(errors="replace"))

    _alsa_handler = handler_type(handler)  # referenced for as long as alsa-lib may call it
    if path:
        ctypes.CDLL(path).snd_lib_error_set_handler(_alsa_handler)


def output_devices() -> list[dict[str, Any]]:
    """The devices that can play: index, name, channels, default sample rate, default."""
    sd = _sounddevice()
    default = sd.default.device[1]
    return [
        {"index": i, "name": d["name"], "channels": d["max_output_channels"],
         "default_samplerate": d["default_samplerate"], "default": i == default}
        for i, d in enumerate(sd.query_devices())
        if d["max_output_channels"] > 0
    ]


def resolve_output_device(device: str | int | None) -> int:
    """A device index from an index, an exact name or a unique part of one; None is the
    system default. E501 (with the list of devices) when there is no such output device."""
    devices = output_devices()
    if not devices:
        raise BreezeError(
            "E501", "no audio output device (connect one, or start PulseAudio: pulseaudio --start)"
        )
    if isinstance(device, str) and device.strip().isdigit():
        device = int(device)
    if device is None:
        chosen = [d for d in devices if d["default"]] or devices[:1]
    elif isinstance(device, int):
        chosen = [d for d in devices if d["index"] == device]
    else:
        chosen = [d for d in devices if d["name"] == device] or [
            d for d in devices if device.lower() in d["name"].lower()
        ]
    if len(chosen) != 1:
        names = ", ".join(f"{d['index']}: {d['name']}" for d in devices)
        what = "matches several" if chosen else "is not"
        raise BreezeError("E501", f"{device!r} {what} an output device (outputs: {names})")
    return int(chosen[0]["index"])


class Player:
    """Plays PCM16 mono audio gaplessly on one output device.

    `play()` queues audio and returns at once (any thread). `cancel()` silences the device
    within a few milliseconds and drops everything queued. Use it as a context manager, or
    call `open()` and `close()`. `gaps_ms` records each silence between two pieces of audio
    (audio that came too late), except after a cancel, where new speech begins.
    """

    def __init__(
        self, device: str | int | None = None, sample_rate: int = 22050, latency: float = 0.05,
        on_output: Callable[[bytes, float], None] | None = None,
    ) -> None:
        self.device = device
        # given each block handed to the device, silence included, and when it sounds
        # (perf_counter); on the audio thread, so it must only copy: an echo canceller's
        # reference
        self.on_output = on_output
        self.sample_rate = sample_rate
        self.latency = latency
        # perf_counter when the first sample since opening (or the last cancel) was heard
        self.first_sample_at: float | None = None
        self.gaps_ms: deque[float] = deque(maxlen=1000)  # silences between two segments
        self._queue: deque[tuple[np.ndarray, int]] = deque()  # (samples, offset)
        self._queued = 0  # frames ever queued (the timeline's end)
        self._played = 0  # frames handed to the device
        self._handed_at = 0.0  # perf_counter of the last callback that handed audio over
        self._silence = 0  # frames of silence since the last segment ended
        self._fresh = True  # nothing played since opening or cancel: a silence is no gap
        self._lock = threading.Lock()
        self._idle = threading.Event()  # nothing queued: everything was handed to the device
        self._idle.set()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._stream: Any = None
        self._output_latency = 0.0

    # -- lifecycle -----------------------------------------------------------------------

    def open(self) -> Player:
        """Open and start the stream; E501 when there is no usable output device."""
        if self._stream is not None:
            return self
        sd = _sounddevice()
        index = resolve_output_device(self.device)
        try:
            stream = sd.OutputStream(
                samplerate=self.sample_rate, channels=1, dtype="int16", device=index,
                latency=self.latency, callback=self._callback,
            )
        except sd.PortAudioError as exc:
            raise BreezeError("E501", f"cannot open the audio output device: {exc}") from None
        try:
            stream.start()
        except sd.PortAudioError as exc:
            stream.close()  # opened, not started: each later attempt would leak another
            raise BreezeError("E501", f"cannot start the audio output device: {exc}") from None
        self._stream = stream
        self._output_latency = float(stream.latency)
        return self

    def close(self) -> None:
        """Stop at once (what is still queued is dropped) and release the device."""
        with self._lock:
            self._queue.clear()
            self._queued = self._played
            self._set_idle()
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.abort()
            stream.close()

    def __enter__(self) -> Player:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- playing -------------------------------------------------------------------------

    def play(self, pcm: bytes, sample_rate: int | None = None, channels: int = 1,
             mark: Any = None) -> Segment:
        """Queue PCM16 audio after what is already queued; where it will sound."""
        if channels > 1:
            pcm = to_pcm16_mono(np.frombuffer(pcm, dtype="<i2"), channels)
        rate = sample_rate or self.sample_rate
        if rate != self.sample_rate:
            pcm = resample(pcm, rate, self.sample_rate)
        samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2")
        self.open()
        with self._lock:
            start = self._queued
            if len(samples):
                self._queue.append((samples, 0))
                self._queued += len(samples)
                self._idle.clear()
            end = self._queued
        return Segment(self._ms(start), self._ms(end), mark)

    def cancel(self) -> None:
        """Silence now and forget what is queued; the player stays usable."""
        with self._lock:
            audible = (self._queued > self._played
                       or time.perf_counter() - self._handed_at < self._output_latency)
            self._queue.clear()
            self._queued = self._played
            self._fresh = True
            self.first_sample_at = None
            self._set_idle()
        stream = self._stream
        if audible and stream is not None and stream.active:
            stream.abort()  # drops what the device still buffers
            stream.start()

    @property
    def played_ms(self) -> float:
        """How far playback has got on the timeline: what has been heard, i.e. what was
        handed to the device less what the device still buffers (its output latency)."""
        buffered = self._output_latency - (time.perf_counter() - self._handed_at)
        return max(0.0, self._ms(self._played) - 1000.0 * max(0.0, buffered))

    @property
    def queued_ms(self) -> float:
        """The end of the timeline: everything queued so far."""
        return self._ms(self._queued)

    @property
    def pending_ms(self) -> float:
        """Queued audio not yet handed to the device."""
        return self._ms(self._queued - self._played)

    @property
    def latency_ms(self) -> float:
        """The device's output latency: how long after being handed over a sample is heard."""
        return round(1000.0 * self._output_latency, 3)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until everything queued has been heard; False on timeout."""
        if not self._idle.wait(timeout):
            return False
        time.sleep(self._output_latency)
        return True

    async def drain(self) -> None:
        """Await until everything queued has been heard (or was cancelled)."""
        done = asyncio.Event()
        with self._lock:
            if not self._idle.is_set():
                self._waiters.append((asyncio.get_running_loop(), done))
            else:
                done.set()
        await done.wait()
        await asyncio.sleep(self._output_latency)

    def _set_idle(self) -> None:
        """With the lock held: wake whoever waits for the queue to empty."""
        self._idle.set()
        waiters, self._waiters = self._waiters, []
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed: nobody waits any more
                pass

    def _ms(self, frames: int) -> float:
        return round(1000.0 * frames / self.sample_rate, 3)

    # -- the audio thread ----------------------------------------------------------------

    def _ahead_s(self, time_info: Any) -> float:
        """How long until the block being handed over sounds: as the device tells, else its
        nominal latency (a host API that gives no times gives zeros)."""
        ahead = float(time_info.outputBufferDacTime - time_info.currentTime)
        return ahead if 0.0 < ahead < 2.0 else self._output_latency

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        out = outdata[:, 0]
        filled = 0
        with self._lock:
            queue = self._queue
            if queue and self._silence:
                if not self._fresh:  # silence between two pieces of audio: a gap
                    self.gaps_ms.append(self._ms(self._silence))
                self._silence = 0
            while filled < frames and queue:
                samples, offset = queue[0]
                take = min(frames - filled, len(samples) - offset)
                out[filled:filled + take] = samples[offset:offset + take]
                filled += take
                if offset + take == len(samples):
                    queue.popleft()
                else:
                    queue[0] = (samples, offset + take)
            self._silence += frames - filled
            self._played += filled
            self._fresh = self._fresh and not filled
            if not queue and not self._idle.is_set():
                self._set_idle()
        out[filled:] = 0
        if self.on_output is not None:
            self.on_output(out.tobytes(), time.perf_counter() + self._ahead_s(time_info))
        if filled:
            self._handed_at = time.perf_counter()
            if self.first_sample_at is None:
                self.first_sample_at = self._handed_at + self._output_latency
