"""The one JSON shape of a result, used by every `--json` command."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .types import InferenceResult

__all__ = ["result_to_dict", "result_to_json"]


def result_to_dict(result: InferenceResult, request_id: str | None = None) -> dict[str, Any]:
    """{"request_id", "partial", "outputs", "metadata", "error"}; bytes become their length."""
    return {
        "request_id": request_id or result.metadata.get("request_id"),
        "partial": result.partial,
        "outputs": _jsonable(result.outputs),
        "metadata": _jsonable(result.metadata),
        "error": result.error.to_dict() if result.error else None,
    }


def result_to_json(result: InferenceResult, request_id: str | None = None) -> str:
    return json.dumps(result_to_dict(result, request_id), ensure_ascii=False)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float):  # the most common, first
        return value
    if isinstance(value, dict | Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    return str(value)
