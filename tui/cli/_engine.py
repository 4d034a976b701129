"""The engine the commands share, with the user's settings."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable

from breeze.engine import BreezeError, Capability, Engine, EngineSettings, Handle
from breeze.runners import builtin_registry

from ..config import engine_settings, load_app_config
from ._output import fail


def make_engine(settings: EngineSettings | None = None) -> Engine:
    """The engine with the user's saved settings (runner of choice, default parameters)."""
    return Engine(builtin_registry(), settings or engine_settings(load_app_config()))


def parse_params(pairs: list[str]) -> dict[str, object]:
    """`-p key=value` pairs; values are read as JSON when they parse, else as strings.
    A malformed pair prints E400 and exits."""
    params: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise fail("E400", f"expected key=value, got {pair!r}")
        try:
            params[key.strip()] = json.loads(value)
        except ValueError:
            params[key.strip()] = value
    return params


def cancel_on_sigint(handle: Handle) -> Callable[[], None]:
    """Ctrl+C cancels the request (the stream then ends as cancelled); returns an undo."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, handle.cancel, "interrupted (Ctrl+C)")
    return lambda: loop.remove_signal_handler(signal.SIGINT)


def runner_for_voice(engine: Engine, voice: str) -> str | None:
    """The speech runner whose voice has this id or name (a path to an .onnx file is a Piper
    voice); None when none has it exactly: the default runner then resolves it (a language)
    or says which voices it has."""
    if voice.endswith(".onnx"):
        return "piper"
    wanted = voice.strip().lower()
    for entry in engine.registry.candidates(Capability.TTS):
        runner = entry.runner
        if not hasattr(runner, "voices") or not runner.is_supported():
            continue
        try:
            voices = runner.voices()
        except BreezeError:
            continue
        for v in voices:
            names = {str(v["id"]).lower(), str(v["name"]).lower(),
                     str(v["name"]).split(" (")[0].lower()}
            if wanted in names:
                return entry.name
    return None
