"""The app's voice, apart from its widgets: dictation requests and what their results do to
the prompt, spoken replies on one speaker, and the mute that keeps Breeze's own voice out of
dictation."""

from __future__ import annotations

import threading
from typing import Any

from engine import Capability, Engine, Handle, InferenceRequest, InferenceResult
from engine.speech import SpeakReply, SpeechSettings, speak_reply

from .config import AppConfig

UNMUTE_AFTER_S = 0.3  # the room's echo of the last word, after playback ends


class DictationText:
    """What each dictation result does to the prompt: the utterances it finalized (to insert,
    once each) and the utterance in progress (shown dimmed until it is final)."""

    def __init__(self) -> None:
        self.inserted = 0  # finalized utterances already handed out
        self.partial = ""

    def update(self, result: InferenceResult) -> list[str]:
        """The finals to insert; `self.partial` is then the utterance in progress."""
        if result.error is not None:
            self.partial = ""
            return []
        meta = result.metadata
        if not result.partial:  # the last utterance is finalized when the stream ends
            segments = [str(s.get("text", "")) for s in meta.get("segments") or []]
            finals, self.partial = segments[self.inserted:], ""
        elif meta.get("is_final"):
            finals, self.partial = [str(result.outputs.get("segment", ""))], ""
        else:
            finals, self.partial = [], str(result.outputs.get("segment", ""))
        finals = [text.strip() for text in finals if text.strip()]
        self.inserted += len(finals)
        return finals


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
        params: dict[str, Any] = {"language": voice.language} if voice.language else {}
        device: str | int = voice.microphone
        if isinstance(device, str) and device.isdigit():
            device = int(device)
        request = InferenceRequest({"microphone": device, "mute": self.mute}, params,
                                   capability=Capability.ASR)
        return self.engine.submit(request, runner=voice.asr_runner or None)

    def open_speaker(self) -> None:
        """Open the speaker (once; again after the device changed). E501 when there is none.
        Opening takes a moment on the event loop, once: done in a thread, an open cut short by
        a cancelled task would leave a stream for the garbage collector to close."""
        device = self.config.voice.speaker
        if self._player is not None and self._player_device == device:
            return
        self.close()
        from runners.audio_out import Player

        chosen: str | int | None = int(device) if device.isdigit() else (device or None)
        self._player = Player(chosen).open()
        self._player_device = device

    def speak(self, llm_request: InferenceRequest, llm_runner: str | None) -> SpeakReply:
        """Speak the reply to `llm_request` as it is written (after `open_speaker`)."""
        assert self._player is not None, "open_speaker() first"
        return speak_reply(self.engine, llm_request, self._player,
                           SpeechSettings(llm_runner=llm_runner))

    @property
    def played_ms(self) -> float:
        return float(self._player.played_ms) if self._player is not None else 0.0

    def close(self) -> None:
        player, self._player = self._player, None
        if player is not None:
            player.close()
