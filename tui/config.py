"""The user's settings for the app and the command line, in the config file's [app] and
[runners.<name>] tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine import Capability, EngineSettings
from engine.config_file import read_config, write_config
from engine.guardian import GuardianSettings, make_guard


@dataclass
class AppConfig:
    llm_runner: str | None = None  # None: the best available by priority
    runner_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    speak_replies: bool = False
    guardian: dict[str, Any] = field(default_factory=dict)  # the [guardian] table

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
    )


def save_app_config(app_config: AppConfig) -> None:
    config = read_config()
    app = {"speak_replies": app_config.speak_replies}
    if app_config.llm_runner:
        app["llm_runner"] = app_config.llm_runner
    config["app"] = app
    config["runners"] = {k: v for k, v in app_config.runner_params.items() if v}
    if app_config.guardian:
        config["guardian"] = app_config.guardian
    write_config(config)


def engine_settings(app_config: AppConfig, **overrides: Any) -> EngineSettings:
    """Engine settings with the user's runner, parameters and guardian (on by default)."""
    preferred = {Capability.LLM: app_config.llm_runner} if app_config.llm_runner else {}
    overrides.setdefault("guard", make_guard(GuardianSettings.from_mapping(app_config.guardian)))
    return EngineSettings(
        preferred_runners=preferred, runner_params=app_config.runner_params, **overrides
    )
