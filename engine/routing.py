"""Multi-capability routing (the seed's Advanced 4): which capability a request asks for."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from .errors import BreezeError
from .types import Capability, InferenceRequest

__all__ = ["Mute", "route", "validate_inputs"]


@runtime_checkable
class Mute(Protocol):
    """Set while a live microphone must not be heard (threading.Event is one)."""

    def is_set(self) -> bool: ...


_INPUT_TYPES: dict[str, tuple[type, ...]] = {
    "text": (str,),
    "audio": (bytes, bytearray, memoryview),
    "image": (bytes, bytearray, str),
    "messages": (list, tuple),
    "microphone": (str, int),  # a live input device for ASR: name, index or "" (default)
    "mute": (Mute,),  # with "microphone": silence while it is set
}


def route(request: InferenceRequest) -> Capability:
    """The request's own capability, else one inferred from its inputs: audio or microphone
    -> ASR, image -> VLM, text or messages -> LLM (speech synthesis must be asked for: TTS)."""
    validate_inputs(request.inputs)
    if not isinstance(request.params, Mapping):
        raise BreezeError("E400", f"params must be a mapping, got {type(request.params).__name__}")
    if request.capability is not None:
        return Capability.parse(request.capability)
    inputs = request.inputs
    if "audio" in inputs or "microphone" in inputs:
        return Capability.ASR
    if "image" in inputs:
        return Capability.VLM
    if "text" in inputs or "messages" in inputs:
        return Capability.LLM
    raise BreezeError("E400", "the request has no inputs (expected text, messages, audio or image)")


def validate_inputs(inputs: Mapping[str, Any]) -> None:
    if not isinstance(inputs, Mapping):
        raise BreezeError("E400", f"inputs must be a mapping, got {type(inputs).__name__}")
    for key, value in inputs.items():
        expected = _INPUT_TYPES.get(key)
        if expected is None:
            raise BreezeError("E400", f"unknown input {key!r} (known: {', '.join(_INPUT_TYPES)})")
        if not isinstance(value, expected):
            names = " or ".join(t.__name__ for t in expected)
            raise BreezeError("E400", f"input {key!r} must be {names}, got {type(value).__name__}")
    for i, message in enumerate(inputs.get("messages", ())):
        if (
            not isinstance(message, Mapping)
            or message.get("role") not in ("system", "user", "assistant")
            or not isinstance(message.get("content"), str)
        ):
            raise BreezeError(
                "E400",
                f"messages[{i}] must be {{'role': system|user|assistant, 'content': str}}",
            )
        _check_text(f"messages[{i}]", message["content"])
    if isinstance(inputs.get("text"), str):
        _check_text("text", inputs["text"])


def _check_text(name: str, text: str) -> None:
    """Text that cannot be written as UTF-8 (lone surrogates, from undecodable bytes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BreezeError("E400", f"input {name} is not valid Unicode text: character "
                                  f"{exc.start} is {text[exc.start]!r}, half of a UTF-16 pair "
                                  "(were the bytes UTF-8?)") from None
