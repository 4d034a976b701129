"""The streaming contract of DESIGN.md as checks over a list of results.

Each check raises AssertionError naming the rule it found broken, so the suite can also be
shown to fail on runners that break a rule (test_rules_detect.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from breeze.engine import Capability, InferenceResult


def check_progressive(results: Sequence[InferenceResult]) -> None:
    assert len(results) > 1, "rule 1: a streaming request yields more than one result"


def check_single_terminal(results: Sequence[InferenceResult]) -> None:
    assert results, "rule 1: a request ends with a terminal result"
    terminals = [i for i, r in enumerate(results) if not r.partial]
    assert terminals, "rule 1: no terminal result (partial=False)"
    assert len(terminals) == 1, f"rule 1: {len(terminals)} terminal results, expected one"
    assert terminals[0] == len(results) - 1, "rule 1: results arrived after the terminal result"
    assert all(r.error is None for r in results[:-1]), "rule 3: an error result was partial"


def check_text_grows(results: Sequence[InferenceResult], capability: Capability) -> None:
    if capability is not Capability.LLM:
        return
    texts = [r.text for r in results if "text" in r.outputs and r.ok]
    for before, after in zip(texts, texts[1:], strict=False):
        assert after.startswith(before), f"rule 2: LLM text changed: {before!r} -> {after!r}"
    for r in results:
        if r.partial and "delta" in r.outputs:
            assert r.text.endswith(r.outputs["delta"]), "rule 2: delta is not the end of text"


def check_error_result(results: Sequence[InferenceResult]) -> None:
    check_single_terminal(results)
    error = results[-1].error
    assert error is not None, "rule 3: the failure did not arrive as an error result"
    assert error.code and error.message, "rule 3: an error result needs a code and a message"


def check_cancelled(results: Sequence[InferenceResult]) -> None:
    check_single_terminal(results)
    last = results[-1]
    assert last.metadata.get("finish_reason") == "cancelled", (
        f"rule 4: cancel ended with finish_reason={last.metadata.get('finish_reason')!r}"
    )
    partial_texts = [r.text for r in results[:-1] if "text" in r.outputs]
    if partial_texts:
        assert last.text.startswith(partial_texts[-1]) or last.text == partial_texts[-1], (
            "rule 1: the cancelled result lost the output accumulated so far"
        )


def check_stream(results: Sequence[InferenceResult], capability: Capability) -> None:
    check_single_terminal(results)
    check_text_grows(results, capability)
