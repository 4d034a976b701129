"""Settings, built from the runners' parameter schemas: runner, model, system prompt and every
parameter of the chosen runner, the guardian, and voice (microphone with a level meter,
speaker with a test tone, dictation), validated before anything is saved."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Select, Static, Switch

from breeze.engine import BreezeError, Capability, ParamSpec, Registry
from breeze.engine.guardian import STRICTNESS, GuardianSettings, Strategy

from ..config import AppConfig
from .voice_fields import VoiceFields

# Chosen with their own widgets above the runner's parameters, or not the user's to set.
_SPECIAL = {"model", "system_prompt", "stream_mode", "language"}


class SettingsScreen(ModalScreen[AppConfig | None]):
    """Dismissed with the new AppConfig when saved, None when cancelled."""

    BINDINGS = [
        Binding("escape", "dismiss(None)", "Cancel"),
        Binding("ctrl+s", "save", "Save the settings"),
    ]

    def __init__(self, registry: Registry, config: AppConfig, models: list[str]) -> None:
        super().__init__()
        self.registry = registry
        self.config = config
        self.models = models
        llm = [e.name for e in registry.entries() if Capability.LLM in e.capabilities]
        self.runner_names = llm
        self.runner = config.llm_runner if config.llm_runner in llm else llm[0]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="settings"):
            yield Static("Settings — ctrl+s save · esc cancel", classes="title")
            yield Label("Runner")
            yield Select([(n, n) for n in self.runner_names], value=self.runner,
                         allow_blank=False, id="runner")
            with Vertical(id="runner-fields"):
                yield from self._runner_fields()
            yield from self._guardian_fields()
            yield VoiceFields(self.registry, self.config)
            with Horizontal(classes="buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def _runner_fields(self) -> ComposeResult:
        """The model, system prompt and parameters of the chosen runner."""
        params = self.config.params_for(self.runner)
        yield Label("Model (catalog id or GGUF path; empty: the default)")
        yield Input(str(params.get("model") or ""), id="model",
                    placeholder=", ".join(self.models),
                    suggester=SuggestFromList(self.models, case_sensitive=False))
        yield Static("", id="error-model", classes="field-error")
        yield Label("System prompt")
        yield Input(str(params.get("system_prompt", "")), id="system_prompt")
        for spec in self._specs():
            yield Label(f"{spec.name} — {_describe(spec)}")
            value = params.get(spec.name)
            yield Input("" if value is None else _show(value), placeholder=_show(spec.default),
                        id=f"param-{spec.name}")
            yield Static("", id=f"error-{spec.name}", classes="field-error")

    def _guardian_fields(self) -> ComposeResult:
        guardian = GuardianSettings.from_mapping(self.config.guardian)
        strategies = [(s.value, s.value) for s in Strategy]
        yield Static("Guardian — safety checks around every reply", classes="section")
        with Horizontal(classes="switch-row"):
            yield Switch(guardian.enabled, id="guardian-enabled")
            yield Label("on")
            yield Switch(guardian.fail_closed, id="guardian-fail-closed")
            yield Label("a failed check blocks")
        yield Label("Strictness")
        yield Select([(s, s) for s in STRICTNESS], value=guardian.strictness, allow_blank=False,
                     id="guardian-strictness")
        yield Label(f"Prompts ({', '.join(guardian.input.checks)})")
        yield Select(strategies, value=guardian.input.strategy.value, allow_blank=False,
                     id="guardian-input")
        yield Label(f"Replies ({', '.join(guardian.output.checks)})")
        yield Select(strategies, value=guardian.output.strategy.value, allow_blank=False,
                     id="guardian-output")

    def _guardian_table(self) -> dict[str, Any]:
        table = GuardianSettings.from_mapping(self.config.guardian).to_mapping()
        table["enabled"] = self.query_one("#guardian-enabled", Switch).value
        table["fail_closed"] = self.query_one("#guardian-fail-closed", Switch).value
        for key in ("strictness", "input", "output"):
            table[key] = self.query_one(f"#guardian-{key}", Select).value
        return table

    def _specs(self) -> list[ParamSpec]:
        schema = self.registry.get(self.runner).param_schema()
        return [spec for spec in schema if spec.name not in _SPECIAL]

    @on(Select.Changed, "#runner")
    async def _runner_changed(self, event: Select.Changed) -> None:
        if event.value != self.runner and isinstance(event.value, str):
            self.runner = event.value  # only its fields change: the rest keeps what was typed
            fields = self.query_one("#runner-fields", Vertical)
            await fields.remove_children()
            await fields.mount_all(list(self._runner_fields()))

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        params, ok = self._validated()
        voice = self.query_one(VoiceFields)
        voice_config, voice_ok = voice.validated()
        if not (ok and voice_ok):
            self.notify("Some values are not valid: nothing was saved.", severity="error")
            return
        # keys the form does not show (stream_mode, language, a hand-written key) are kept
        shown = {"model", "system_prompt", *(spec.name for spec in self._specs())}
        kept = {k: v for k, v in self.config.runner_params.get(self.runner, {}).items()
                if k not in shown}
        runner_params = dict(self.config.runner_params)
        runner_params[self.runner] = {**kept, **params}
        if voice.tts is not None:
            name = voice.tts.name
            runner_params[name] = voice.speech_params(runner_params.get(name, {}))
        self.dismiss(dataclasses.replace(
            self.config, llm_runner=self.runner, runner_params=runner_params,
            guardian=self._guardian_table(), voice=voice_config,
            speak_replies=voice.speak_replies,
        ))

    def _validated(self) -> tuple[dict[str, Any], bool]:
        params: dict[str, Any] = {}
        ok = True
        model = self.query_one("#model", Input).value.strip()
        problem = _model_problem(model, self.models)
        self.query_one("#error-model", Static).update(problem)
        if problem:
            ok = False
        elif model:
            params["model"] = model
        system = self.query_one("#system_prompt", Input).value.strip()
        if system:
            params["system_prompt"] = system
        for spec in self._specs():
            raw = self.query_one(f"#param-{spec.name}", Input).value.strip()
            error = self.query_one(f"#error-{spec.name}", Static)
            error.update("")
            if not raw:
                continue
            try:
                params[spec.name] = spec.coerce(_parse(raw, spec))
            except BreezeError as exc:
                error.update(str(exc.error))
                ok = False
        return params, ok


def _describe(spec: ParamSpec) -> str:
    bounds = ""
    if spec.minimum is not None or spec.maximum is not None:
        bounds = f" ({spec.minimum if spec.minimum is not None else ''}"
        bounds += f"..{spec.maximum if spec.maximum is not None else ''})"
    return (spec.description or spec.type.__name__) + bounds


def _show(value: Any) -> str:
    """Lists as "a, b"; as JSON when an item would not survive that (a comma, a newline)."""
    if value is None:
        return ""
    if isinstance(value, list):
        plain = all(isinstance(v, str) and "," not in v and v.isprintable() and v == v.strip()
                    and v for v in value)
        return ", ".join(value) if plain else json.dumps(value)
    return str(value)


def _parse(raw: str, spec: ParamSpec) -> Any:
    if spec.type is not list:
        return raw
    if raw.startswith("["):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            message = f"parameter {spec.name!r} is not a JSON list: {exc.msg}"
            raise BreezeError("E400", message) from None
    return [part.strip() for part in raw.split(",") if part.strip()]


def _model_problem(model: str, catalog_ids: list[str]) -> str:
    """Why `model` cannot be used ('' when it can): a catalog id, or a GGUF file."""
    if not model or model in catalog_ids:
        return ""
    path = Path(model).expanduser()
    if path.is_dir():
        return f"E400: {path} is a directory: give the path of a .gguf file"
    if path.is_file():
        return "" if path.suffix.lower() == ".gguf" else f"E400: {path} is not a .gguf file"
    if "/" in model or model.endswith(".gguf"):
        return f"E501: {path} does not exist"
    return f"E404: no model {model!r} in the catalog ({', '.join(catalog_ids)})"
