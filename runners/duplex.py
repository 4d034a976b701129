"""The devices of a spoken conversation (engine.talk): a microphone and a speaker that know of
each other, and the voice activity detector that cuts what the microphone hears into turns.

    with Duplex(microphone="", speaker=None) as duplex:
        talk = Talk(engine, duplex.frames(), voice_activity(), duplex.player)

Both run at one rate (16 kHz, what the detector and the recognizers hear). Everything the
speaker plays is the echo canceller's reference, so the microphone's audio comes out without
Breeze's own voice, as heard back from open speakers; the user's voice stays.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType

from ._echo import EchoCanceller
from ._vad import RATE, Segmenter, VadSettings
from .audio_in import Microphone
from .audio_out import Player

__all__ = ["RATE", "Duplex", "voice_activity"]

BLOCK_MS = 20  # the microphone's blocks: short, so that a barge-in is heard at once
PLAYER_LATENCY_S = 0.2


def voice_activity(end_of_turn_ms: int = 600, barge_in_ms: int = 200) -> Segmenter:
    """A detector for a conversation: speech held `barge_in_ms` is the user speaking (it
    interrupts Breeze), a pause of `end_of_turn_ms` ends the user's turn."""
    return Segmenter(VadSettings(min_speech_ms=barge_in_ms, min_silence_ms=end_of_turn_ms))


class Duplex:
    def __init__(self, microphone: str | int = "", speaker: str | int | None = None, *,
                 echo_cancel: bool = True) -> None:
        self.canceller = EchoCanceller(RATE) if echo_cancel else None
        self.player = Player(speaker, sample_rate=RATE, latency=PLAYER_LATENCY_S,
                             on_output=self.canceller.played if self.canceller else None)
        self.microphone = Microphone(microphone, RATE, block_ms=BLOCK_MS)

    def open(self) -> Duplex:
        """Open both devices; E501 when one is missing."""
        self.player.open()
        try:
            self.microphone.open()
        except BaseException:
            self.player.close()
            raise
        return self

    async def frames(self) -> AsyncIterator[bytes]:
        """The microphone's audio, Breeze's own voice taken out, until closed."""
        async for frame in self.microphone:
            yield (self.canceller.clean(frame.pcm, frame.captured_at) if self.canceller
                   else frame.pcm)

    def close(self) -> None:
        self.microphone.close()
        self.player.close()

    def __enter__(self) -> Duplex:
        return self.open()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
