"""The speech-recognition options `breeze dictate` and `breeze transcribe` share, and the
request params they make."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ._engine import parse_params
from ._output import json_errors

__all__ = [
    "JsonOption",
    "LanguageOption",
    "ModelOption",
    "ParamOption",
    "RunnerOption",
    "WordsOption",
    "asr_params",
]

JsonOption = Annotated[
    bool, typer.Option("--json", help="One JSON result a line.", callback=json_errors)
]
WordsOption = Annotated[bool, typer.Option("--words", help="Word timings and confidences.")]
RunnerOption = Annotated[str | None, typer.Option("--runner", help="vosk or pocketsphinx.")]
ModelOption = Annotated[
    str | None, typer.Option("--model", help="Catalog id or model directory.")
]
LanguageOption = Annotated[
    str | None, typer.Option("--language", help="Language code, e.g. en, ko.")
]
ParamOption = Annotated[
    list[str], typer.Option("-p", "--param", help="Parameter key=value (repeat).")
]


def asr_params(
    param: list[str], model: str | None, language: str | None, words: bool
) -> dict[str, Any]:
    """The request params from the shared options (E400 for a malformed -p)."""
    params = parse_params(param)
    if model is not None:
        params["model"] = model
    if language is not None:
        params["language"] = language
    if words:
        params["stream_mode"] = "word"
    return params
