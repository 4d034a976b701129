"""What a guardian check found, as the pipeline uses it: the verdict, masking, G100 results."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import RunnerError
from .types import InferenceResult

__all__ = ["ISSUE_NAMES", "MASKS", "Report", "blocked_result", "describe", "mask"]

# Worst last; "unchecked": a check failed and the text went through (fail open).
_ORDER = ("safe", "unchecked", "warning", "unsafe")

MASKS = {
    "email": "[email]",
    "phone": "[phone number]",
    "card_number": "[card number]",
    "iban": "[IBAN]",
    "secret": "[secret]",
    "offensive": "****",
    "prompt_injection": "[removed]",
    "llm_judge": "[removed]",
}
ISSUE_NAMES = {
    "email": "an e-mail address",
    "phone": "a phone number",
    "card_number": "a card number",
    "iban": "an IBAN",
    "secret": "a key or token",
    "offensive": "offensive language",
    "prompt_injection": "a prompt injection",
    "llm_judge": "content the guard model judged unsafe",
}


@dataclass(frozen=True, slots=True)
class Report:
    """The verdict of one or more checks; issue spans index the checked text."""

    status: str
    risk: float
    issues: tuple[Mapping[str, Any], ...] = ()
    error: RunnerError | None = None
    ms: float = 0.0
    checks: int = 1

    @classmethod
    def of(cls, result: InferenceResult, ms: float) -> Report:
        """From the terminal result of a GUARDIAN request."""
        if result.error is not None:
            return cls("unchecked", 0.0, (), result.error, ms)
        if result.metadata.get("finish_reason") == "cancelled":
            error = RunnerError.of("E101", "the check was interrupted")
            return cls("unchecked", 0.0, (), error, ms)
        issues = tuple(result.metadata.get("detected_issues") or ())
        return cls(str(result.outputs.get("safety_status", "safe")),
                   float(result.outputs.get("risk_score", 0.0)), issues, None, ms)

    @property
    def unsafe(self) -> list[Mapping[str, Any]]:
        return [i for i in self.issues if i.get("status") == "unsafe"]

    def within(self, offset: int, floor: int) -> Report:
        """Spans moved by `offset`, keeping only (the parts of) issues that end after
        `floor`: the text before it was checked and shown already."""
        kept = []
        for issue in self.issues:
            start, end = issue["span"][0] + offset, issue["span"][1] + offset
            if end > floor:
                kept.append({**issue, "span": [max(start, floor), end]})
        return Report(self.status, self.risk, tuple(kept), self.error, self.ms, self.checks)

    def starting_before(self, end: int) -> Report:
        """Only the issues that start before `end` (the others are in text not released)."""
        kept = tuple(i for i in self.issues if i["span"][0] < end)
        status = self.status if kept or self.error is not None else "safe"
        risk = self.risk if kept else 0.0
        return Report(status, risk, kept, self.error, self.ms, self.checks)

    def merged(self, other: Report) -> Report:
        return Report(
            max(self.status, other.status, key=_ORDER.index),
            max(self.risk, other.risk),
            self.issues + other.issues,
            self.error or other.error,
            self.ms + other.ms,
            self.checks + other.checks,
        )

    def info(self, checkpoint: str, strategy: str, action: str) -> dict[str, Any]:
        """The metadata a consumer gets: metadata["guardian_<checkpoint>"]."""
        return {
            "checkpoint": checkpoint,
            "strategy": strategy,
            "action": action,  # passed | warned | filtered | blocked | unchecked
            "status": self.status,
            "risk_score": round(self.risk, 4),
            "issues": [dict(i) for i in self.issues],
            "checks": self.checks,
            "check_ms": round(self.ms, 3),
            "error": str(self.error) if self.error else None,
        }


def describe(issues: list[Mapping[str, Any]]) -> str:
    """The kinds of issues in words: "a card number, an e-mail address"."""
    return ", ".join(dict.fromkeys(ISSUE_NAMES.get(i["type"], i["type"]) for i in issues))


def mask(text: str, issues: list[Mapping[str, Any]], offset: int = 0) -> str:
    """`text` with each issue's span (minus `offset`) replaced by its type's mask."""
    spans = sorted(
        (max(0, i["span"][0] - offset), min(len(text), i["span"][1] - offset),
         MASKS.get(i["type"], "****"))
        for i in issues
    )
    out: list[str] = []
    at = 0
    for start, end, replacement in spans:
        if end <= at:  # inside a span masked already
            continue
        if start >= at:
            out.append(text[at:start])
            out.append(replacement)
        at = end
    out.append(text[at:])
    return "".join(out)


def blocked_result(
    message: str, outputs: Mapping[str, Any], info: Mapping[str, Any]
) -> InferenceResult:
    """The G100 terminal result; `info` goes to metadata["guardian_<checkpoint>"]."""
    error = RunnerError.of("G100", f"blocked by the guardian: {message}")
    metadata = {f"guardian_{info['checkpoint']}": dict(info), "finish_reason": "blocked"}
    return InferenceResult.failure(error, outputs, metadata)
