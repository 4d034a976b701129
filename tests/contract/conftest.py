from __future__ import annotations

import pytest

from breeze.engine import Engine, EngineSettings, Registry

from .cases import ContractCase, all_cases


@pytest.fixture(params=all_cases(), ids=lambda c: c.id)
def contract_case(request: pytest.FixtureRequest) -> ContractCase:
    """The one fixture through which a runner joins the contract suite."""
    return request.param


@pytest.fixture
def contract_engine(contract_case: ContractCase):
    runner = contract_case.make_runner()
    engine = Engine(Registry([runner]), EngineSettings(cancel_grace_s=0.5))
    engine.runner = runner  # type: ignore[attr-defined]
    return engine
