"""The app's voice, apart from its widgets: dictation requests and what their results do to
the prompt, spoken replies on one speaker, and the mute that keeps Breeze's own voice out of
dictation."""

from __future__ import annotations

import threading
from typing import Any

from breeze.engine import Capability, Engine, Handle, InferenceRequest, InferenceResult
from breeze.engine.speech import SpeakReply, SpeechSettings, speak_reply

from .config import AppConfig

UNMUTE_AFTER_S = 0.3  # the room's echo of the last word, after playback ends


class DictationText:
    """What each dictation result does to the prompt: the utterances it finalized (to insert,
    once each) and the utterance in progress (shown dimmed until it is final)."""

    def __init__(self) -> None:
        self.finalized = 0  # utterances finalized so far
        self.partial = ""
        self._skip = False  # the utterance in progress was sent as a partial

    def skip_utterance(self) -> None:
        """The utterance in progress went out as it stood: drop its final."""
        self._skip, self.partial = bool(self.partial), ""

    def update(self, result: InferenceResult) -> list[str]:
        """The finals to insert; `self.partial` is then the utterance in progress."""
        meta = result.metadata
        if not result.partial:  # the end (an error's too) finalizes the last utterance
            segments = [str(s.get("text", "")) for s in meta.get("segments") or []]
            finals, self.partial = segments[self.finalized:], ""
        elif meta.get("is_final"):
            finals, self.partial = [str(result.outputs.get("segment", ""))], ""
        else:
            segment = str(result.outputs.get("segment", ""))
            if not segment.strip():  # the utterance sent as it stood ended with no words
                self._skip = False   # (no final comes for it): the next one is shown
            finals, self.partial = [], "" if self._skip else segment
        self.finalized += len(finals)
        if self._skip and finals:
            finals, self._skip = finals[1:], False
        return [text.strip() for text in finals if text.strip()]


class Voice:
    """One microphone and one speaker, as the settings name them."""

    def __init__(self, engine: Engine, config: AppConfig) -> None:
        self.engine = engine
        self.config = config
        self.mute = threading.Event()  # set while Breeze speaks: dictation hears silence
        self._player: Any = None
        self._player_device: str | None = None

    def dictate(self) -> Handle:
        """Start listening; cancel the handle to stop (the microphone is closed then)."""
        voice = self.config.voice
        # a result every chunk, whatever stream mode the runner's settings name
        params: dict[str, Any] = {"stream_mode": "chunk"}
        if voice.language:
            params["language"] = voice.language
        device: str | int = voice.microphone
        if isinstance(device, str) and device.isdigit():
            device = int(device)
        request = InferenceRequest({"microphone": device, "mute": self.mute}, params,
                                   capability=Capability.ASR)
        return self.engine.submit(request, runner=voice.asr_runner or None)

    def open_speaker(self) -> None:
        """Open the speaker (once; again after the device changed). E501 when there is none.
        It opens on the event loop, taking a moment once: opened in a thread, an open cut
        short by a cancelled task would leave a stream for the garbage collector to close."""
        device = self.config.voice.speaker
        if self._player is not None and self._player_device == device:
            return
        self.close()
        from breeze.runners.audio_out import Player

        chosen: str | int | None = int(device) if device.isdigit() else (device or None)
        self._player = Player(chosen).open()
        self._player_device = device

    def speak(self, llm_request: InferenceRequest, llm_runner: str | None) -> SpeakReply:
        """Speak the reply to `llm_request` as it is written (after `open_speaker`)."""
        assert self._player is not None, "open_speaker() first"
        return speak_reply(self.engine, llm_request, _MutingPlayer(self._player, self.mute),
                           SpeechSettings(llm_runner=llm_runner))

    @property
    def played_ms(self) -> float:
        return float(self._player.played_ms) if self._player is not None else 0.0

    def close(self) -> None:
        player, self._player = self._player, None
        if player is not None:
            player.close()


class _MutingPlayer:
    """The speaker, muting the microphone before each piece of audio it is given: muting
    when the chat screen hears of the audio could let its first syllable into dictation.
    The screen unmutes once the speech is over."""

    def __init__(self, player: Any, mute: threading.Event) -> None:
        self._player, self._mute = player, mute

    @property
    def played_ms(self) -> float:
        return float(self._player.played_ms)

    def play(self, pcm: bytes, sample_rate: int | None = None, channels: int = 1,
             mark: Any = None) -> Any:
        self._mute.set()
        return self._player.play(pcm, sample_rate, channels, mark)

    def cancel(self) -> None:
        self._player.cancel()

    async def drain(self) -> None:
        await self._player.drain()
