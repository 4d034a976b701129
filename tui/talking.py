"""A spoken conversation with the user's settings, for `breeze talk` and the app's talk mode:
the devices (runners.duplex) and the loop (engine.talk)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from breeze.engine import Engine
from breeze.engine.speech import SpeechSettings
from breeze.engine.talk import Talk, TalkSettings, preload_talk

from .config import AppConfig

__all__ = ["TalkOptions", "TalkSession", "open_talk"]


@dataclass(frozen=True, slots=True)
class TalkOptions:
    """What the command line (or the app) adds to the saved settings."""

    end_of_turn_ms: int = 600
    barge_in_ms: int = 200
    echo_cancel: bool = True
    microphone: str | None = None  # None: the settings' device
    speaker: str | None = None
    llm_runner: str | None = None
    llm_params: Mapping[str, Any] = field(default_factory=dict)
    voice: str | None = None
    tts_runner: str | None = None
    system_prompt: str | None = None


class TalkSession:
    """The devices and the loop of one conversation."""

    def __init__(self, talk: Talk, duplex: Any, detector: Any) -> None:
        self.talk = talk
        self._duplex = duplex
        self._detector = detector

    async def aclose(self) -> None:
        """Stop the conversation, then release the devices and the detector."""
        await self.talk.aclose()
        self._duplex.close()
        self._detector.close()


async def open_talk(engine: Engine, config: AppConfig, options: TalkOptions,
                    history: list[dict[str, str]] | None = None) -> TalkSession:
    """Load the models, open the microphone and the speaker, and start listening.
    BreezeError when a model cannot load (E50x) or a device or the echo canceller is
    missing (E501)."""
    from breeze.runners.duplex import Duplex, voice_activity

    voice = config.voice
    settings = talk_settings(config, options)
    await preload_talk(engine, settings)
    duplex = Duplex(
        _device(options.microphone if options.microphone is not None else voice.microphone),
        _device(options.speaker if options.speaker is not None else voice.speaker) or None,
        echo_cancel=options.echo_cancel,
    ).open()
    try:
        detector = voice_activity(options.end_of_turn_ms, options.barge_in_ms)
    except BaseException:
        duplex.close()
        raise
    talk = Talk(engine, duplex.frames(), detector, duplex.player, settings, history)
    return TalkSession(talk, duplex, detector)


def talk_settings(config: AppConfig, options: TalkOptions) -> TalkSettings:
    voice = config.voice
    speech = SpeechSettings(
        tts_params={"voice": options.voice} if options.voice else {},
        tts_runner=options.tts_runner or voice.tts_runner or None,
        llm_runner=options.llm_runner or config.llm_runner,
    )
    return TalkSettings(
        speech=speech, llm_params=dict(options.llm_params),
        asr_runner=voice.asr_runner or None,
        asr_params={"language": voice.language} if voice.language else {},
        system_prompt=options.system_prompt,
    )


def _device(device: str) -> str | int:
    return int(device) if device.isdigit() else device
