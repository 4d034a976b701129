"""The user's settings for the app and the command line: the typed view of the config file's
[app], [runners.<name>], [guardian] and [voice] tables, loaded and validated here only."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from breeze.engine import BreezeError, Capability, EngineSettings
from breeze.engine.config_file import (
    config_path,
    read_config,
    take_config_notices,
    update_config,
)
from breeze.engine.guardian import GuardianSettings, make_guard

AUTO_SEND_MAX_S = 30.0
LANGUAGE_CODE = re.compile(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*")  # en, ko, pt-BR


@dataclass
class VoiceConfig:
    """Dictation and speech: the [voice] table."""

    microphone: str = ""  # a device name or index; "" is the system's default
    speaker: str = ""
    language: str = "en"  # what dictation listens for
    asr_runner: str = ""  # "" is the best available (vosk, else pocketsphinx)
    auto_send_seconds: float = 0.0  # send the prompt after this long without speech; 0: off
    tts_runner: str = ""  # the runner that speaks replies; "" is the first by priority


@dataclass
class AppConfig:
    """The typed view of the whole config file; `problems` says what was ignored and why."""

    llm_runner: str | None = None  # None: the best available by priority
    runner_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    speak_replies: bool = False
    guardian: dict[str, Any] = field(default_factory=dict)  # the [guardian] table
    voice: VoiceConfig = field(default_factory=VoiceConfig)
    problems: list[str] = field(default_factory=list, compare=False, repr=False)

    def params_for(self, runner: str) -> dict[str, Any]:
        return dict(self.runner_params.get(runner, {}))


class _Checked:
    """Reads tables and values out of the config file; each bad one is a problem that names
    the file, the key and the value, and is left out so that the rest still applies."""

    def __init__(self, config: dict[str, Any], problems: list[str]) -> None:
        self.config = config
        self.problems = problems
        self.path = config_path()

    def problem(self, where: str, value: Any, why: str) -> None:
        self.problems.append(f"{self.path}: {where} = {value!r} is not valid ({why}); "
                             "it is ignored")

    def table(self, name: str) -> dict[str, Any]:
        value = self.config.get(name, {})
        if isinstance(value, dict):
            return value
        self.problem(name, value, "must be a table")
        return {}

    def value(self, table: str, values: dict[str, Any], key: str, default: Any,
              check: Callable[[Any], Any]) -> Any:
        if key not in values:
            return default
        try:
            return check(values[key])
        except ValueError as exc:
            self.problem(f"[{table}] {key}", values[key], str(exc))
            return default


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value.strip()


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _device(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("must be a device name or number")
    return str(value).strip()


def _language(value: Any) -> str:
    text = _string(value)
    if text and not LANGUAGE_CODE.fullmatch(text):
        raise ValueError("must be a language code such as en or pt-BR")
    return text


def _auto_send(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not 0 <= value <= AUTO_SEND_MAX_S:
        raise ValueError(f"must be a number of seconds from 0 to {AUTO_SEND_MAX_S:g}")
    return float(value)


_VOICE_CHECKS: dict[str, Callable[[Any], Any]] = {
    "microphone": _device, "speaker": _device, "language": _language,
    "asr_runner": _string, "auto_send_seconds": _auto_send, "tts_runner": _string,
}


def load_app_config() -> AppConfig:
    """The config file, read and validated here and nowhere else."""
    config = read_config()
    problems = take_config_notices()
    checked = _Checked(config, problems)
    app = checked.table("app")
    runner_params: dict[str, dict[str, Any]] = {}
    for name, params in checked.table("runners").items():
        if isinstance(params, dict):
            runner_params[name] = dict(params)
        else:
            checked.problem(f"[runners] {name}", params, "must be a table of parameters")
    guardian: dict[str, Any] = {}
    for key, value in checked.table("guardian").items():
        try:
            GuardianSettings.from_mapping({key: value})
            guardian[key] = value
        except BreezeError as exc:
            checked.problem(f"[guardian] {key}", value, exc.error.message)
    voice_table = checked.table("voice")
    voice = VoiceConfig(**{
        f.name: checked.value("voice", voice_table, f.name, getattr(VoiceConfig, f.name),
                              _VOICE_CHECKS[f.name])
        for f in fields(VoiceConfig)
    })
    checked.table("remote")
    return AppConfig(
        llm_runner=checked.value("app", app, "llm_runner", "", _string) or None,
        runner_params=runner_params,
        speak_replies=checked.value("app", app, "speak_replies", False, _bool),
        guardian=guardian,
        voice=voice,
        problems=problems,
    )


def _app_table(app_config: AppConfig) -> dict[str, Any]:
    app: dict[str, Any] = {"speak_replies": app_config.speak_replies}
    if app_config.llm_runner:
        app["llm_runner"] = app_config.llm_runner
    return app


def save_app_table(app_config: AppConfig) -> None:
    """Only the [app] table (a toggle): what else the file holds is kept as it is now."""
    update_config({"app": _app_table(app_config)})


def save_app_config(app_config: AppConfig) -> None:
    tables: dict[str, dict[str, Any]] = {
        "app": _app_table(app_config),
        "runners": {k: v for k, v in app_config.runner_params.items() if v},
        "voice": asdict(app_config.voice),
    }
    if app_config.guardian:
        tables["guardian"] = app_config.guardian
    update_config(tables)


def engine_settings(app_config: AppConfig, **overrides: Any) -> EngineSettings:
    """Engine settings with the user's runner, parameters and guardian (on by default)."""
    preferred = {Capability.LLM: app_config.llm_runner} if app_config.llm_runner else {}
    if app_config.voice.tts_runner:
        preferred[Capability.TTS] = app_config.voice.tts_runner
    overrides.setdefault("guard", make_guard(GuardianSettings.from_mapping(app_config.guardian)))
    return EngineSettings(
        preferred_runners=preferred, runner_params=app_config.runner_params, **overrides
    )
