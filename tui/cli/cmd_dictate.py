"""`breeze dictate`: a live transcript of the microphone until Ctrl+C (or --seconds)."""

from __future__ import annotations

import asyncio
import json

import typer

from breeze.engine import InferenceRequest
from breeze.engine.errors import BreezeError
from breeze.runners.audio_in import input_devices

from ._asr_options import (
    JsonOption,
    LanguageOption,
    ModelOption,
    ParamOption,
    RunnerOption,
    WordsOption,
    asr_params,
)
from ._output import exit_for, fail
from .cmd_transcribe import run_asr


def dictate(
    device: str = typer.Option("", "--device", help="Input device name or index (see "
                                                    "--list-devices); default: the system's."),
    seconds: float | None = typer.Option(None, "--seconds", min=0.1,
                                         help="Stop after this many seconds."),
    json_: JsonOption = False,
    words: WordsOption = False,
    runner: RunnerOption = None,
    model: ModelOption = None,
    language: LanguageOption = None,
    param: ParamOption = [],  # noqa: B006 (only read)
    list_devices: bool = typer.Option(False, "--list-devices", help="List input devices."),
) -> None:
    """Transcribe the microphone live; Ctrl+C stops and prints the rest of the transcript."""
    if list_devices:
        _print_devices(json_)
        return
    params = asr_params(param, model, language, words)
    if seconds is not None:
        params["max_seconds"] = seconds
    request = InferenceRequest({"microphone": device}, params)
    terminal = asyncio.run(run_asr(request, runner, json_=json_, words=words))
    exit_for(terminal)  # stopping with Ctrl+C is how dictation ends: exit status 0


def _print_devices(json_: bool) -> None:
    try:
        devices = input_devices()
    except BreezeError as exc:
        raise fail(exc.error.code, exc.error.message) from None
    if not devices:
        raise fail("E501", "no input device (microphone) found")
    for device in devices:
        if json_:
            typer.echo(json.dumps(device, ensure_ascii=False))
        else:
            mark = "*" if device["default"] else " "
            typer.echo(f"{mark} {device['index']:3d}  {device['name']} "
                       f"({device['default_samplerate']} Hz)")


def register(app: typer.Typer) -> None:
    app.command("dictate")(dictate)
