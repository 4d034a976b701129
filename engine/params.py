"""Parameter schemas: each runner declares its parameters; requests are validated against them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import BreezeError

__all__ = ["COMMON_PARAMS", "ParamSchema", "ParamSpec"]

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


@dataclass(frozen=True, slots=True)
class ParamSpec:
    name: str
    type: type  # int, float, str, bool or list (of str)
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None
    description: str = ""

    def coerce(self, value: Any) -> Any:
        """The value converted to the declared type, or BreezeError E400 naming the parameter."""
        if self.type is list:
            return self._coerce_list(value)
        if self.type is float and isinstance(value, int | float) and not isinstance(value, bool):
            value = float(value)
        elif self.type is bool and isinstance(value, str) and value.lower() in _BOOL_WORDS:
            value = _BOOL_WORDS[value.lower()]
        elif self.type in (int, float) and isinstance(value, str):
            value = self._from_string(value)
        if not isinstance(value, self.type) or (self.type is int and isinstance(value, bool)):
            raise self._bad(f"must be {_TYPE_NAMES.get(self.type, self.type.__name__)}", value)
        if isinstance(value, float) and not math.isfinite(value):
            raise self._bad("must be a finite number", value)
        if self.minimum is not None and value < self.minimum:  # type: ignore[operator]
            raise self._bad(f"must be >= {self.minimum}", value)
        if self.maximum is not None and value > self.maximum:  # type: ignore[operator]
            raise self._bad(f"must be <= {self.maximum}", value)
        if self.choices is not None and value not in self.choices:
            raise self._bad(f"must be one of {', '.join(map(str, self.choices))}", value)
        return value

    def _from_string(self, value: str) -> Any:
        try:
            return self.type(value)
        except ValueError:
            return value  # reported as the wrong type below

    def _coerce_list(self, value: Any) -> list[str]:
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise self._bad("must be a string or a list of strings", value)
        return list(value)

    def _bad(self, what: str, value: Any) -> BreezeError:
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return BreezeError("E400", f"parameter '{self.name}' {what}, got {shown}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type.__name__,
            "default": self.default,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "choices": list(self.choices) if self.choices else None,
            "description": self.description,
        }


_BOOL_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}

# Parameters the engine itself understands, valid for every runner.
COMMON_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("model", str, description="model id from the catalog, or a file path"),
    ParamSpec("system_prompt", str, description="instructions placed before the conversation"),
    ParamSpec("stream_mode", str, "token", choices=("token", "sentence", "chunk", "word")),
    ParamSpec("language", str, description="language code, e.g. en, ko"),
)


class ParamSchema:
    """An ordered set of ParamSpecs; `validate` returns the params with defaults filled in."""

    def __init__(self, specs: Iterable[ParamSpec]) -> None:
        self.specs: dict[str, ParamSpec] = {s.name: s for s in COMMON_PARAMS}
        self.specs.update({s.name: s for s in specs})

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.specs.values())

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(params) - set(self.specs))
        if unknown:
            known = ", ".join(sorted(self.specs))
            raise BreezeError("E400", f"unknown parameter '{unknown[0]}' (known: {known})")
        out = {name: spec.default for name, spec in self.specs.items() if spec.default is not None}
        for name, value in params.items():
            if value is not None:
                out[name] = self.specs[name].coerce(value)
        return out

    def to_list(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.specs.values()]
