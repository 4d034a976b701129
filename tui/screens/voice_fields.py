"""The settings' voice section: microphone (with a live level meter), speaker (with a test
tone), spoken replies with their voice (any voice of any speech runner, with a preview) and
rate, and dictation's language, runner and auto-send pause."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Select, Static, Switch
from textual.worker import get_current_worker

from breeze.engine import (
    BreezeError,
    Capability,
    Engine,
    InferenceRequest,
    ParamSpec,
    Registry,
    Runner,
)

from ..config import AUTO_SEND_MAX_S, LANGUAGE_CODE, AppConfig, VoiceConfig
from ..widgets.level_meter import LevelMeter

DEFAULT = "System default"
PREVIEW_TEXT = "Hello! This is how Breeze sounds when it reads a reply aloud."


def _devices(kind: str) -> list[str]:
    """The names of the input or output devices; none when audio is unavailable."""
    from breeze.runners.audio_in import input_devices
    from breeze.runners.audio_out import output_devices

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


def voice_value(runner: str, voice: str) -> str:
    """A choice in the voice list: the voice and the runner it belongs to."""
    return f"{runner}:{voice}" if voice else ""


def split_voice_value(value: str) -> tuple[str, str]:
    """(runner, voice) of a choice; ("", "") for the default."""
    runner, _, voice = value.partition(":")
    return runner, voice


def _voice_options(voices: Iterable[tuple[str, dict[str, Any]]],
                   current: str) -> list[tuple[str, str]]:
    """The voices of every runner, as (label, runner:id)."""
    options = [(f"{v['name']} ({', '.join(v['languages']) or '?'}) · {runner}",
                voice_value(runner, str(v["id"]))) for runner, v in voices]
    if current and current not in {value for _, value in options}:
        runner, voice = split_voice_value(current)  # written by hand: a name or a language
        options.append((f"{voice} · {runner}", current))
    return [("Default", ""), *options]


async def preview_voice(registry: Registry, runner: str | None, params: dict[str, Any],
                        device: str) -> None:
    """Speak PREVIEW_TEXT with these params on the device, through the engine; returns once
    heard. Cancelling the task stops it at once. BreezeError when it cannot speak."""
    from breeze.runners.audio_out import Player

    request = InferenceRequest({"text": PREVIEW_TEXT}, params, capability=Capability.TTS)
    player = Player(_device(device)).open()
    handle = Engine(registry).submit(request, runner=runner)
    try:
        async for result in handle:
            if result.error is not None:
                raise BreezeError(result.error.code, result.error.message)
            if result.outputs.get("audio"):
                out = result.outputs
                player.play(out["audio"], out.get("sample_rate"), out.get("channels", 1))
        await player.drain()
    finally:
        handle.cancel()
        player.close()


class VoiceFields(Vertical):
    def __init__(self, registry: Registry, config: AppConfig) -> None:
        super().__init__(id="voice-fields")
        self.voice = config.voice
        self.speak = config.speak_replies
        self.asr_runners = [e.name for e in registry.entries() if Capability.ASR in e.capabilities]
        self.registry = registry
        try:  # the runner that speaks replies by default, and every one that can speak
            tts_entries = registry.candidates(Capability.TTS)
        except BreezeError:
            tts_entries = []
        self.tts_runners: dict[str, Runner] = {e.name: e.runner for e in tts_entries}
        first = tts_entries[0].runner if tts_entries else None
        # the runner that speaks replies: the user's choice, else the first by priority
        self.default_tts: Runner | None = self.tts_runners.get(config.voice.tts_runner, first)
        self.tts_params = config.params_for(self.default_tts.name) if self.default_tts else {}

    def compose(self) -> ComposeResult:
        voice = self.voice
        yield Static("Voice — dictation and spoken replies", classes="section")
        with Horizontal(classes="switch-row"):
            yield Switch(self.speak, id="voice-speak")
            yield Label("speak replies as they are written (ctrl+s in the chat)")
        if self.default_tts is not None:
            yield from self._speech_fields()
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

    def _speech_fields(self) -> ComposeResult:
        assert self.default_tts is not None
        voice = voice_value(self.default_tts.name, str(self.tts_params.get("voice", "")))
        yield Label("Voice of spoken replies (every voice of every speech runner)")
        with Horizontal(classes="switch-row"):
            yield Select(_voice_options([], voice), value=voice, allow_blank=False,
                         id="voice-reply-voice")
            yield Button("Preview", id="preview-voice")
        yield Static("", id="voice-note")
        rate = self._rate_spec()
        if rate is not None:
            what = rate.description or "speaking rate"
            bounds = "" if rate.minimum is None or rate.maximum is None else \
                f" ({rate.minimum:g}..{rate.maximum:g})"
            yield Label(f"{what[:1].upper()}{what[1:]}{bounds}")
            yield Input(str(self.tts_params.get("rate", "")), placeholder=f"{rate.default}",
                        id="voice-rate")
            yield Static("", id="error-voice-rate", classes="field-error")

    @property
    def tts(self) -> Runner | None:
        """The runner whose voice is chosen (the default one while "Default" is): its
        parameters are the ones saved."""
        runner, _ = split_voice_value(self._value("reply-voice")) if self.is_mounted else ("", "")
        return self.tts_runners.get(runner, self.default_tts)

    def _rate_spec(self) -> ParamSpec | None:
        assert self.default_tts is not None
        return next((s for s in self.default_tts.param_schema() if s.name == "rate"), None)

    def on_mount(self) -> None:
        self.watch_level(self.voice.microphone, self.query_one(LevelMeter))
        if self.default_tts is not None:
            self.list_voices(list(self.tts_runners.values()))

    @work(exclusive=True, group="voices", thread=True)
    def list_voices(self, runners: list[Runner]) -> None:
        """The voices of every speech runner that works here (asking a speech engine takes
        a moment: not on the UI)."""
        worker = get_current_worker()
        voices: list[tuple[str, dict[str, Any]]] = []
        errors = []
        for runner in runners:
            if not hasattr(runner, "voices") or not runner.is_supported():
                continue
            try:
                voices += [(runner.name, v) for v in runner.voices()]
            except BreezeError as exc:
                errors.append(f"voices of {runner.name}: {exc.error.code}: {exc.error.message}")
        if not worker.is_cancelled:
            self.app.call_from_thread(self._show_voices, voices, "; ".join(errors) or None)

    def _show_voices(self, voices: list[tuple[str, dict[str, Any]]], error: str | None) -> None:
        if not self.is_attached:  # the settings were closed meanwhile
            return
        if error:
            self.notify(error, severity="error")
        select = self.query_one("#voice-reply-voice", Select)
        chosen = self._value("reply-voice")
        select.set_options(_voice_options(voices, chosen))
        select.value = chosen

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
        from breeze.runners.audio_in import Microphone

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

    @on(Select.Changed, "#voice-reply-voice")
    def _voice_changed(self) -> None:
        chosen, default = self.tts, self.default_tts
        note = "" if chosen is default or chosen is None or default is None else (
            f"Spoken replies will use {chosen.name} (now {default.name}).")
        self.query_one("#voice-note", Static).update(note)

    @on(Button.Pressed, "#preview-voice")
    def _preview_pressed(self) -> None:
        runner, voice = split_voice_value(self._value("reply-voice"))
        params: dict[str, Any] = {"voice": voice} if voice else {}
        if (rate := self._rate()) not in ("", None):
            params["rate"] = rate
        self.preview(runner or None, params, self._value("speaker"))

    @work(exclusive=True, group="voice-preview")
    async def preview(self, runner: str | None, params: dict[str, Any], device: str) -> None:
        """Pressed again, the preview starts over; closing the settings stops it."""
        try:
            await preview_voice(self.registry, runner, params, device)
        except BreezeError as exc:
            self.notify(f"{exc.error.code}: {exc.error.message}", severity="error")

    @on(Button.Pressed, "#test-speaker")
    def _test_pressed(self) -> None:
        self.test_speaker(self._value("speaker"))

    @work(exclusive=True, group="speaker-test", thread=True)
    def test_speaker(self, device: str) -> None:
        from breeze.runners.audio_out import Player

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
        ok = self._rate() is not None and ok
        tts = self.tts
        return VoiceConfig(self._value("microphone"), self._value("speaker"), language,
                           self._value("asr-runner"), pause,
                           tts.name if tts is not None else ""), ok

    def _rate(self) -> int | str | None:
        """The speaking rate typed ("" when none); None, with the error shown, if invalid."""
        spec = self._rate_spec() if self.default_tts is not None else None
        if spec is None:
            return ""
        raw = self.query_one("#voice-rate", Input).value.strip()
        error = self.query_one("#error-voice-rate", Static)
        error.update("")
        try:
            return spec.coerce(raw) if raw else ""
        except BreezeError as exc:
            error.update(f"{exc.error.code}: {exc.error.message}")
            return None

    def speech_params(self, saved: dict[str, Any]) -> dict[str, Any]:
        """The parameters of the runner of the chosen voice (`tts`): `saved` with the voice
        and rate from the form."""
        params = {k: v for k, v in saved.items() if k not in ("voice", "rate")}
        _, voice = split_voice_value(self._value("reply-voice"))
        if voice:
            params["voice"] = voice
        if (rate := self._rate()) not in ("", None):
            params["rate"] = rate
        return params
