"""The built-in runners, one module each; a runner module lists its runner classes in
`RUNNERS`. Modules import their model library lazily, so listing runners loads no model."""

from __future__ import annotations

import importlib
import pkgutil

from breeze.engine import Registry, Runner

__all__ = ["builtin_registry", "builtin_runners"]


def builtin_runners() -> list[type[Runner]]:
    found: list[type[Runner]] = []
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            found += getattr(importlib.import_module(f"{__name__}.{module.name}"), "RUNNERS", [])
    return found


def builtin_registry() -> Registry:
    return Registry(builtin_runners())
