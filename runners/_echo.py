"""Acoustic echo cancellation: WebRTC's audio processing module (the aec-audio-processing
wheel), with what the speaker played as its reference.

    canceller = EchoCanceller(16000)
    player = Player(rate=16000, on_output=canceller.played)   # the audio thread feeds it
    clean = canceller.clean(mic_pcm, captured_at)              # the microphone less the echo

Both streams are PCM16 mono at one rate, processed in 10 ms frames; audio that does not fill a
frame waits for the next call. WebRTC's canceller finds the delay between the two itself, but
only while the two streams keep step: it takes the n-th frame of what was played to go with
the n-th frame heard, give or take a fixed delay. A device's clock does not keep that step (an
output stream that underruns or restarts hands over more audio than real time, a microphone
opened later starts behind), so when both streams come with times (when each block sounds,
when each was captured) the played audio is fed to the canceller as the microphone reaches it:
what sounds up to a little after a captured block goes in before that block, what was replaced
or never heard alongside it does not.

Four things are added for a voice activity detector, which hears speech at any level:
- when the speaker starts after a quiet spell, the canceller lets its first syllables through
  almost whole before it adapts: what the microphone captures from when they sound (by the
  device times, else from when they are played) for ONSET_MUTE_MS is silenced;
- while it converges (the first second or so) its output still holds a faint copy of Breeze's
  voice, about 40 dB down. While the speaker plays, output more than RESIDUAL_DB below what it
  played lately is taken for that residue and silenced; a user speaking over Breeze is far
  louder than that and passes;
- now and then, early on, it passes a stretch of the echo almost whole. Output much like what
  sounded around the time it was captured (a normalized correlation of ECHO_LIKENESS or more,
  within the device times' error) holds that copy: the copy is taken out, and what is left
  (a user speaking over Breeze) stays unless it is only the copy's residue;
- on an echo path with no loss (a sound server's monitor of the output picked as the
  microphone, or a null sink) it lapses for seconds at a time, even late, and passes what it
  lets through filtered, too unlike what sounded for the check above. What the microphone
  heard lately that is nothing but a copy of what sounded then is silenced; in a room, reverb
  and noise keep a microphone from ever hearing such a copy.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import numpy as np

from breeze.engine import BreezeError
from breeze.engine.audio import dbfs

__all__ = ["EchoCanceller"]

_DELAY_HINT_MS = 100  # output latency + the input's block: where the delay search starts
RESIDUAL_DB = 30.0
ONSET_MUTE_MS = 350  # the output latency and the echo path's delay included
_MUTE_EARLY_S = 0.05  # the mute starts this much before the device times say (their error)
_ECHO_TAIL_FRAMES = 50  # the played level is remembered this long (10 ms frames): the echo path
_QUIET_FRAMES = 100  # played silence this long is a quiet spell
_ACTIVE_DBFS = -60.0  # played audio above this is sound
_STALE_S = 0.5  # played audio this much older than what the microphone hears is not fed
# Played audio reaches the canceller this long before the device times say the microphone
# hears it. The canceller finds the delay itself, but only an echo that comes after its
# reference, and a sound server's times can be a few hundred ms off (with a shorter lead,
# Breeze's first words came through on the null sink while the canceller searched)
_REFERENCE_LEAD_S = 0.45
ECHO_LIKENESS = 0.6
_LIKENESS_WINDOW_S = 0.3  # how far the device times may be off, either way
_LIKENESS_MIN_DBFS = -60.0  # quieter output is not worth the check
_LIKENESS_S = 0.1
_RESIDUE = 0.1  # what is left of the output without the copy, this small, is its residue


class EchoCanceller:
    def __init__(self, rate: int = 16000) -> None:
        self.rate = rate
        self._processor = _processor(rate)
        self._frame = rate // 100 * 2  # bytes in 10 ms
        # (when it sounds, perf_counter; the audio), appended on the audio thread
        self._played: deque[tuple[float | None, bytes]] = deque()
        self._reference_until = 0.0  # when the played audio fed so far ends sounding
        self._reference = b""
        self._heard = b""
        self._lock = threading.Lock()  # the processor is not shared between threads
        self._played_levels: deque[float] = deque([-120.0], maxlen=_ECHO_TAIL_FRAMES)
        self._quiet = _QUIET_FRAMES  # played frames of silence in a row
        self._muted = 0  # microphone frames still to silence (without device times)
        self._mute_span = (0.0, 0.0)  # capture times to silence (with device times)
        self._reference_at: float | None = None  # when the unfed reference's start sounds
        self._sounded = _Sounded(rate)
        self._lately = _Lately(rate)  # what the microphone heard lately, echo and all

    def played(self, pcm: bytes, sounds_at: float | None = None) -> None:
        """What the speaker just played, and when it sounds (called on the audio thread: it
        only appends)."""
        self._played.append((sounds_at, pcm))

    def clean(self, pcm: bytes, captured_at: float | None = None) -> bytes:
        """The microphone's `pcm`, captured from `captured_at` on, with Breeze's own voice
        taken out (whole 10 ms frames; the rest comes out with the next call). Without a
        time, everything played so far goes to the canceller first."""
        with self._lock:
            if captured_at is None:
                self._feed_reference(None, None)
            else:
                heard_until = captured_at + len(pcm) / 2 / self.rate + _REFERENCE_LEAD_S
                self._feed_reference(captured_at - _STALE_S, heard_until)
            data = self._heard + pcm
            start = None if captured_at is None else captured_at - len(self._heard) / 2 / self.rate
            whole = len(data) - len(data) % self._frame
            self._heard = data[whole:]
            out = b"".join(
                self._clean_frame(data[i:i + self._frame],
                                  None if start is None else start + i / 2 / self.rate)
                for i in range(0, whole, self._frame))
            if captured_at is None:
                return out
            self._lately.add(pcm, captured_at)
            if dbfs(out) > _LIKENESS_MIN_DBFS:
                if self._sounded.is_copy(self._lately):
                    return bytes(len(out))
                out = self._sounded.take_out(out, captured_at)
            return out

    def _clean_frame(self, frame: bytes, captured_at: float | None) -> bytes:
        cleaned = self._processor.process_stream(frame)
        if captured_at is not None and self._mute_span[0] <= captured_at < self._mute_span[1]:
            return bytes(len(cleaned))
        if self._muted:
            self._muted -= 1
            return bytes(len(cleaned))
        if dbfs(cleaned) < max(self._played_levels) - RESIDUAL_DB:
            return bytes(len(cleaned))
        return cleaned

    def _feed_reference(self, stale_before: float | None, until: float | None) -> None:
        """Played audio to the canceller: what sounds before `until` (all of it, when None),
        but for what sounds mostly before `stale_before` or with audio already fed (a
        restarted stream plays its first blocks again over the ones it dropped)."""
        while self._played:
            sounds_at, pcm = self._played[0]
            if until is not None and sounds_at is not None and sounds_at > until:
                break
            self._played.popleft()
            if sounds_at is not None and stale_before is not None:
                middle = sounds_at + len(pcm) / 4 / self.rate  # device times jitter a little
                if middle <= max(stale_before, self._reference_until):
                    continue
                self._reference_until = max(self._reference_until, 2 * middle - sounds_at)
                self._sounded.add(sounds_at, pcm)
            if not self._reference:
                self._reference_at = sounds_at
            self._reference += pcm
        frame, data, at = self._frame, self._reference, self._reference_at
        whole = len(data) - len(data) % frame
        for i in range(0, whole, frame):
            self._processor.process_reverse_stream(data[i:i + frame])
            sounds_at = None if at is None else at + i / 2 / self.rate
            self._heard_played(dbfs(data[i:i + frame]), sounds_at)
        self._reference = data[whole:]
        if at is not None:
            self._reference_at = at + whole / 2 / self.rate

    def _heard_played(self, level: float, sounds_at: float | None) -> None:
        self._played_levels.append(level)
        if level < _ACTIVE_DBFS:
            self._quiet += 1
            return
        if self._quiet >= _QUIET_FRAMES:
            if sounds_at is None:
                self._muted = ONSET_MUTE_MS // 10
            else:
                self._mute_span = (sounds_at - _MUTE_EARLY_S, sounds_at + ONSET_MUTE_MS / 1000)
        self._quiet = 0


class _Sounded:
    """What the speaker played lately, by when it sounded."""

    _KEEP_S = 2.0

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._blocks: deque[tuple[float, np.ndarray]] = deque()
        self._output = _Lately(rate)  # what the canceller let through lately

    def add(self, sounds_at: float, pcm: bytes) -> None:
        self._blocks.append((sounds_at, np.frombuffer(pcm, "<i2").astype(np.float64)))
        while self._blocks[0][0] < sounds_at - self._KEEP_S:
            self._blocks.popleft()

    def is_copy(self, heard: _Lately) -> bool:
        """Whether what the microphone heard lately is nothing but a copy of what sounded
        then: all but _RESIDUE of it is explained by that copy."""
        likeness, _ = self._likest(heard.samples, heard.at)
        return likeness ** 2 > 1.0 - _RESIDUE

    def take_out(self, pcm: bytes, captured_at: float) -> bytes:
        """`pcm`, captured from `captured_at` on, less the copy it holds of what sounded then
        (silence when nothing but the copy is left). The likeness is judged over the last
        _LIKENESS_S of output: a block of a few ms of any voice is like something."""
        block = self._output.add(pcm, captured_at)
        likeness, copy = self._likest(self._output.samples, self._output.at)
        copy = copy[-len(block):]
        if likeness < ECHO_LIKENESS or not copy.any():
            return pcm
        rest = block - copy * (float(copy @ block) / float(copy @ copy))
        if float(rest @ rest) < _RESIDUE * float(block @ block):
            return bytes(len(pcm))
        return np.clip(rest, -32768, 32767).astype("<i2").tobytes()

    def _likest(self, heard: np.ndarray, captured_at: float) -> tuple[float, np.ndarray]:
        """How much `heard`, captured from `captured_at` on, is like what sounded then (the
        largest normalized correlation within the device times' error, 0 to 1), and the
        stretch of what sounded it is most like."""
        n, pad = len(heard), round(_LIKENESS_WINDOW_S * self.rate)
        start, size = captured_at - _LIKENESS_WINDOW_S, n + 2 * pad
        sounded = np.zeros(size)
        for sounds_at, samples in self._blocks:
            offset = round((sounds_at - start) * self.rate)
            lo, hi = max(0, offset), min(size, offset + len(samples))
            if lo < hi:
                sounded[lo:hi] = samples[lo - offset:hi - offset]
        energy = float(heard @ heard)
        if not energy or not sounded.any():
            return 0.0, heard
        fft_n = 1 << (size + n).bit_length()
        dots = np.fft.irfft(np.fft.rfft(sounded, fft_n) * np.conj(np.fft.rfft(heard, fft_n)),
                            fft_n)[:size - n + 1]
        power = np.concatenate(([0.0], np.cumsum(sounded ** 2)))
        windows = np.maximum(power[n:] - power[:-n], 0.01 * energy)  # a near-silent stretch
        likeness = np.abs(dots) / np.sqrt(windows * energy)            # is like nothing
        best = int(np.argmax(likeness))
        return float(likeness[best]), sounded[best:best + n]


class _Lately:
    """The last _LIKENESS_S of a stream of blocks, and when its first sample was captured.
    Blocks follow on from each other though their times jitter a little."""

    _JITTER_S = 0.03

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.samples = np.zeros(0)
        self.at = 0.0

    def add(self, pcm: bytes, captured_at: float) -> np.ndarray:
        """The block `pcm`, captured from `captured_at` on, as samples."""
        block = np.frombuffer(pcm, "<i2").astype(np.float64)
        follows = abs(self.at + len(self.samples) / self.rate - captured_at) < self._JITTER_S
        lately = np.concatenate((self.samples, block)) if follows else block
        self.samples = lately[-round(_LIKENESS_S * self.rate):]
        self.at = captured_at + (len(block) - len(self.samples)) / self.rate
        return block


def _processor(rate: int) -> Any:
    try:
        from aec_audio_processing import AudioProcessor
    except (ImportError, OSError) as exc:
        raise BreezeError("E501", f"no echo canceller: {exc} (pip install "
                                  "aec-audio-processing)") from None
    processor = AudioProcessor(enable_aec=True, enable_ns=False, enable_agc=False,
                               enable_vad=False)
    processor.set_stream_format(rate, 1, rate, 1)
    processor.set_reverse_stream_format(rate, 1)
    processor.set_stream_delay(_DELAY_HINT_MS)
    return processor
