"""The built-in runners, one module each. Modules import their model library lazily, so
listing runners never loads a model."""

from __future__ import annotations

from engine import Registry, Runner

__all__ = ["builtin_registry", "builtin_runners"]


def builtin_runners() -> list[type[Runner]]:
    from .llama_cpp import LlamaCppRunner

    return [LlamaCppRunner]


def builtin_registry() -> Registry:
    return Registry(builtin_runners())
