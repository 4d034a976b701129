"""The settings' voice section: microphone (with a live level meter), speaker (with a test
tone), spoken replies, and dictation's language, runner and auto-send pause."""

from __future__ import annotations

import numpy as np
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Select, Static, Switch
from textual.worker import get_current_worker

from engine import BreezeError, Capability, Registry

from ..config import AUTO_SEND_MAX_S, LANGUAGE_CODE, AppConfig, VoiceConfig
from ..widgets.level_meter import LevelMeter

DEFAULT = "System default"


def _devices(kind: str) -> list[str]:
    """The names of the input or output devices; none when audio is unavailable."""
    from runners.audio_in import input_devices
    from runners.audio_out import output_devices

    try:
        devices = input_devices() if kind == "input" else output_devices()
    except BreezeError:
        return []
    return list(dict.fromkeys(str(d["name"]) for d in devices))


def _options(names: list[str], current: str) -> list[tuple[str, str]]:
    extra = [current] if current and current not in names else []  # a device unplugged now
    return [(DEFAULT, ""), *((n, n) for n in [*names, *extra])]


def _device(value: str) -> str | int | None:
    return int(value) if value.isdigit() else (value or None)


def tone(rate: int = 16000, seconds: float = 0.6, hz: float = 660.0) -> bytes:
    """A soft tone (-12 dBFS) with short fades, as PCM16 mono."""
    t = np.arange(int(rate * seconds)) / rate
    fade = np.minimum(1.0, np.minimum(t, seconds - t) / 0.02)
    return (np.sin(2 * np.pi * hz * t) * fade * 0.25 * 32767).astype("<i2").tobytes()


class VoiceFields(Vertical):
    def __init__(self, registry: Registry, config: AppConfig) -> None:
        super().__init__(id="voice-fields")
        self.voice = config.voice
        self.speak = config.speak_replies
        self.asr_runners = [e.name for e in registry.entries() if Capability.ASR in e.capabilities]

    def compose(self) -> ComposeResult:
        voice = self.voice
        yield Static("Voice — dictation and spoken replies", classes="section")
        with Horizontal(classes="switch-row"):
            yield Switch(self.speak, id="voice-speak")
            yield Label("speak replies as they are written (ctrl+s in the chat)")
        yield Label("Microphone")
        yield Select(_options(_devices("input"), voice.microphone), value=voice.microphone,
                     allow_blank=False, id="voice-microphone")
        yield LevelMeter(id="mic-level")
        yield Label("Speaker")
        with Horizontal(classes="switch-row"):
            yield Select(_options(_devices("output"), voice.speaker), value=voice.speaker,
                         allow_blank=False, id="voice-speaker")
            yield Button("Test", id="test-speaker")
        yield Label("Dictation language (a code: en, ko, de, …)")
        yield Input(voice.language, id="voice-language")
        yield Static("", id="error-voice-language", classes="field-error")
        yield Label("Dictation runner")
        runners = [("best available", ""), *((n, n) for n in self.asr_runners)]
        yield Select(runners, value=voice.asr_runner if voice.asr_runner in self.asr_runners
                     else "", allow_blank=False, id="voice-asr-runner")
        yield Label(f"Send the prompt after a pause in dictation (seconds, 0..{AUTO_SEND_MAX_S:g};"
                    " 0: never)")
        yield Input(f"{voice.auto_send_seconds:g}", id="voice-auto-send")
        yield Static("", id="error-voice-auto-send", classes="field-error")

    def on_mount(self) -> None:
        self.watch_level(self.voice.microphone, self.query_one(LevelMeter))

    @property
    def speak_replies(self) -> bool:
        return self.query_one("#voice-speak", Switch).value

    def _value(self, name: str) -> str:
        value = self.query_one(f"#voice-{name}", Select).value
        return value if isinstance(value, str) else ""

    @on(Select.Changed, "#voice-microphone")
    def _microphone_changed(self, event: Select.Changed) -> None:
        device = event.value if isinstance(event.value, str) else ""
        self.watch_level(device, self.query_one(LevelMeter))

    @work(exclusive=True, group="mic-level", thread=True)
    def watch_level(self, device: str, meter: LevelMeter) -> None:
        """The chosen microphone's level, live, while the settings are open. The whole loop
        runs in its thread, so the device is closed there however the worker ends."""
        from runners.audio_in import Microphone

        worker = get_current_worker()
        self.app.call_from_thread(meter.show, None, "")
        try:
            mic = Microphone(_device(device)).open()
        except BreezeError as exc:
            self.app.call_from_thread(meter.show, None, f"{exc.error.code}: {exc.error.message}")
            return
        try:
            while not worker.is_cancelled:
                frame = mic.read(0.1)
                if frame is not None:
                    self.app.call_from_thread(meter.show, frame.level_dbfs, "")
        finally:
            mic.close()

    @on(Button.Pressed, "#test-speaker")
    def _test_pressed(self) -> None:
        self.test_speaker(self._value("speaker"))

    @work(exclusive=True, group="speaker-test", thread=True)
    def test_speaker(self, device: str) -> None:
        from runners.audio_out import Player

        try:
            with Player(_device(device)) as player:
                player.play(tone(), 16000)
                player.wait(timeout=5)
        except BreezeError as exc:
            self.app.call_from_thread(self.notify, f"{exc.error.code}: {exc.error.message}",
                                      severity="error")

    def validated(self) -> tuple[VoiceConfig, bool]:
        ok = True
        language = self.query_one("#voice-language", Input).value.strip()
        language_error = self.query_one("#error-voice-language", Static)
        language_error.update("")
        if language and not LANGUAGE_CODE.fullmatch(language):
            language_error.update(f"E400: {language!r} is not a language code (en, ko, pt-BR)")
            ok = False
        raw = self.query_one("#voice-auto-send", Input).value.strip() or "0"
        pause_error = self.query_one("#error-voice-auto-send", Static)
        pause_error.update("")
        try:
            pause = float(raw)
        except ValueError:
            pause = -1.0
        if not 0 <= pause <= AUTO_SEND_MAX_S:  # NaN too
            pause_error.update(f"E400: the pause must be 0 to {AUTO_SEND_MAX_S:g} seconds")
            ok, pause = False, 0.0
        return VoiceConfig(self._value("microphone"), self._value("speaker"), language,
                           self._value("asr-runner"), pause), ok
