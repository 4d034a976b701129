"""The user's settings for the app and the command line, in the config file's [app], [voice]
and [runners.<name>] tables."""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from engine import Capability, EngineSettings
from engine.config_file import read_config, update_config, write_config
from engine.guardian import GuardianSettings, make_guard

log = logging.getLogger("breeze.config")

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

    @classmethod
    def from_mapping(cls, table: Any) -> VoiceConfig:
        """The table's valid values; a bad one keeps its default and is logged, not fatal."""
        voice = cls()
        if not isinstance(table, dict):
            log.warning("[voice] is not a table: the defaults apply")
            return voice
        for name in (f.name for f in fields(cls)):
            if name in table:
                try:
                    setattr(voice, name, _coerce(name, table[name], getattr(voice, name)))
                except ValueError:
                    log.warning("[voice] %s = %r is not valid: ignored", name, table[name])
        return voice


def _coerce(name: str, value: Any, default: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(default, float):
        if isinstance(value, int | float) and 0 <= value <= AUTO_SEND_MAX_S:
            return float(value)
        raise ValueError(value)
    if not isinstance(value, str | int):
        raise ValueError(value)
    text = str(value).strip()
    if name == "language" and text and not LANGUAGE_CODE.fullmatch(text):
        raise ValueError(value)
    return text


@dataclass
class AppConfig:
    llm_runner: str | None = None  # None: the best available by priority
    runner_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    speak_replies: bool = False
    guardian: dict[str, Any] = field(default_factory=dict)  # the [guardian] table
    voice: VoiceConfig = field(default_factory=VoiceConfig)

    def params_for(self, runner: str) -> dict[str, Any]:
        return dict(self.runner_params.get(runner, {}))


def load_app_config() -> AppConfig:
    config = read_config()
    app = config.get("app", {})
    runners = config.get("runners", {})
    return AppConfig(
        llm_runner=app.get("llm_runner") or None,
        runner_params={name: dict(table) for name, table in runners.items()},
        speak_replies=bool(app.get("speak_replies", False)),
        guardian=dict(config.get("guardian", {})),
        voice=VoiceConfig.from_mapping(config.get("voice", {})),
    )


def _app_table(app_config: AppConfig) -> dict[str, Any]:
    app: dict[str, Any] = {"speak_replies": app_config.speak_replies}
    if app_config.llm_runner:
        app["llm_runner"] = app_config.llm_runner
    return app


def save_app_table(app_config: AppConfig) -> None:
    """Only the [app] table (a toggle): what else the file holds is kept as it is now."""
    update_config("app", _app_table(app_config))


def save_app_config(app_config: AppConfig) -> None:
    config = read_config()
    config["app"] = _app_table(app_config)
    config["runners"] = {k: v for k, v in app_config.runner_params.items() if v}
    if app_config.guardian:
        config["guardian"] = app_config.guardian
    config["voice"] = asdict(app_config.voice)
    write_config(config)


def engine_settings(app_config: AppConfig, **overrides: Any) -> EngineSettings:
    """Engine settings with the user's runner, parameters and guardian (on by default)."""
    preferred = {Capability.LLM: app_config.llm_runner} if app_config.llm_runner else {}
    overrides.setdefault("guard", make_guard(GuardianSettings.from_mapping(app_config.guardian)))
    return EngineSettings(
        preferred_runners=preferred, runner_params=app_config.runner_params, **overrides
    )
