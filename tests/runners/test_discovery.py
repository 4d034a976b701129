"""Runner discovery: every module's `RUNNERS`, private modules and abstract bases left out."""

from __future__ import annotations

import importlib

from breeze.engine import BlockingRunner, Runner
from breeze.runners import builtin_runners


def test_builtin_runners_are_concrete_and_named_once():
    found = builtin_runners()
    names = [cls.name for cls in found]
    assert len(names) == len(set(names))
    assert {"vosk", "pocketsphinx"} <= set(names)
    for cls in found:
        assert issubclass(cls, Runner) and cls.name
        assert not cls.__dict__.get("__abstract_runner__", False), cls


def test_the_shared_asr_loop_is_private_and_not_a_runner():
    shared = importlib.import_module("breeze.runners._asr")
    assert not hasattr(shared, "RUNNERS")
    assert shared.AsrRunner not in builtin_runners()
    assert issubclass(shared.AsrRunner, BlockingRunner)
    vosk = importlib.import_module("breeze.runners.vosk_asr")
    pocketsphinx = importlib.import_module("breeze.runners.pocketsphinx_asr")
    assert issubclass(vosk.VoskRunner, shared.AsrRunner)
    assert issubclass(pocketsphinx.PocketsphinxRunner, shared.AsrRunner)
