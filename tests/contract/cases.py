"""The contract suite's case type. A runner joins the suite with a module `cases_<name>.py`
beside this one that defines `CASES: list[ContractCase]`."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from breeze.engine import Capability, InferenceRequest, Runner


@dataclass(frozen=True)
class ContractCase:
    id: str
    make_runner: Callable[[], Runner]
    capability: Capability
    request: Callable[[], InferenceRequest]  # streams several results
    long_request: Callable[[], InferenceRequest]  # still running when cancelled
    bad_request: Callable[[], InferenceRequest]  # must end in an error result
    work_done: Callable[[Runner], int] | None = None  # backend work so far (tokens, chunks)
    fails_mid_stream: bool = False  # the streaming request itself ends in an error
    hangs: bool = False  # the streaming request only ends when cancelled
    cycles: int = 200  # submit/cancel cycles of the leak test


def all_cases() -> list[Any]:
    """Every case, as a pytest param (skipped when the case says why it cannot run)."""
    cases: list[ContractCase] = []
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name.startswith("cases_"):
            cases += importlib.import_module(f"{__package__}.{module.name}").CASES
    return [
        pytest.param(case, id=case.id) for case in cases
    ]
