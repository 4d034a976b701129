"""Guardian runner (GUARDIAN): progressive safety analysis of a text (the seed's pattern).

Each check is a step: offensive language (the trained classifier of alt-profanity-check),
personal data (e-mail, phone, card numbers with Luhn, IBANs with mod 97, keys and tokens),
prompt-injection phrases, and, when a guard model is configured, an LLM judge. A long text
is analysed in portions; after every step a partial result reports the verdict so far
(`safety_status`, `risk_score`, `analysis_progress`) and what the step found; the terminal
result holds the overall verdict and every issue.

Scores (0..1) become statuses with the strictness thresholds: at or above `warning` a
finding is reported as a warning, at or above `unsafe` as unsafe; below, it is not reported.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from breeze.engine import (
    BreezeError,
    CancelToken,
    Capability,
    InferenceRequest,
    InferenceResult,
    ParamSchema,
    ParamSpec,
    Runner,
    Support,
)
from breeze.engine.text import split_sentences

from ._guardian_checks import PATTERN_CHECKS, Issue
from ._guardian_judge import MAX_CHARS as JUDGE_MAX_CHARS
from ._guardian_judge import Judge
from ._profanity import ProfanityModel

__all__ = ["CHECKS", "THRESHOLDS", "GuardianRunner", "status_for"]

CHECKS = ("offensive", "personal_data", "prompt_injection")
JUDGE_CHECK = "llm_judge"
# strictness -> (warning at, unsafe at)
THRESHOLDS: dict[str, tuple[float, float]] = {
    "low": (0.9, 0.98),
    "medium": (0.75, 0.93),
    "high": (0.5, 0.75),
}
STATUSES = ("safe", "warning", "unsafe")
PORTION_CHARS = 4000  # a step analyses at most this much text, then reports and yields
OVERLAP = 256  # pattern checks see this far into the next portion (a number split there)
OFFENSIVE_WORD_WEIGHT = 2.0  # a word weighing this much is masked in a flagged sentence


_SCHEMA = ParamSchema([
    ParamSpec("strictness", str, "medium", choices=tuple(THRESHOLDS),
              description="low reports less, high more"),
    ParamSpec("checks", list, None, description=f"any of {', '.join(CHECKS)}, "
              f"{JUDGE_CHECK} (default: all; the judge when judge_model is set)"),
    ParamSpec("judge_model", str, None,
              description="guard model (catalog id or GGUF) for the LLM judge"),
])


def status_for(score: float, strictness: str) -> str:
    warning, unsafe = THRESHOLDS[strictness]
    return "unsafe" if score >= unsafe else "warning" if score >= warning else "safe"


class GuardianRunner(Runner):
    name = "guardian"
    capabilities = frozenset({Capability.GUARDIAN})
    priority = 100

    def __init__(self) -> None:
        self._model: ProfanityModel | None = None
        self._judge: Judge | None = None
        self._lock = threading.Lock()
        self.work_units = 0  # steps completed (a check over a portion): the contract's work

    def is_supported(self) -> Support:
        if self._model is not None:  # loaded from the package's files: no need to look again
            return Support(True)
        if importlib.util.find_spec("profanity_check") is None:
            return Support(False, "alt-profanity-check is missing: pip install alt-profanity-check")
        return Support(True)

    def param_schema(self) -> ParamSchema:
        return _SCHEMA  # built once: the engine asks for it on every check

    @property
    def model_name(self) -> str | None:
        name = f"alt-profanity-check {_package_version()}"
        judge = self._judge.model_name if self._judge else None
        return f"{name} + judge {judge}" if judge else name

    def load(self, params: Mapping[str, Any]) -> None:
        with self._lock:
            if self._model is None:
                self._model = ProfanityModel.load()
            judge_model = params.get("judge_model")
            if judge_model:
                if self._judge is None:
                    self._judge = Judge()
                self._judge.load(str(judge_model))

    def is_loaded(self, params: Mapping[str, Any]) -> bool:
        return self._model is not None and not params.get("judge_model")

    def unload(self) -> None:
        with self._lock:
            self._model = None
            if self._judge is not None:
                self._judge.unload()
                self._judge = None

    async def stream(
        self, request: InferenceRequest, token: CancelToken
    ) -> AsyncIterator[InferenceResult]:
        text = request.inputs.get("text")
        if not isinstance(text, str):
            raise BreezeError("E400", "the guardian checks a text: inputs['text']")
        checks = _chosen_checks(request.params)
        scan = _Scan(str(request.params.get("strictness", "medium")), len(checks))
        for check in checks:
            portions = [(0, min(len(text), JUDGE_MAX_CHARS))] if check == JUDGE_CHECK \
                else _portions(text)
            for index, (start, end) in enumerate(portions, start=1):
                if token.cancelled:
                    yield scan.terminal(cancelled=True)
                    return
                began = time.perf_counter()
                step = await self._step(check, text, start, end, token)
                self.work_units += 1
                yield scan.step(check, (start, end), step, done=index / len(portions),
                                began=began)
                if scan.completed < len(checks):
                    await asyncio.sleep(0)  # let the consumer see the step (and cancel)
        yield scan.terminal(cancelled=False)

    async def _step(
        self, check: str, text: str, start: int, end: int, token: CancelToken
    ) -> _Step:
        """One check over text[start:end]."""
        if check == "offensive":
            return self._offensive(text[start:end], start)
        if check == JUDGE_CHECK:
            return await self._judged(text[start:end], token)
        window = text[start:min(len(text), end + OVERLAP)]
        issues = [i.shifted(start) for i in PATTERN_CHECKS[check](window) if i.start < end - start]
        risk = max((i.score for i in issues), default=0.0)
        return _Step(risk, risk if issues else 0.9, issues)  # patterns miss what they don't know

    def _offensive(self, portion: str, offset: int) -> _Step:
        """The classifier on the portion and on each sentence (one slur in a long text
        weighs little against the whole); flagged sentences name their offending words."""
        model = self._model
        assert model is not None, "load() first"
        whole = model.probability(portion)
        risk, issues = whole, []
        for sentence in split_sentences(portion):
            p = model.probability(sentence.text)
            risk = max(risk, p)
            if p >= THRESHOLDS["high"][0]:
                issues += _offensive_issues(model, sentence.text, sentence.start + offset, p)
        if not issues and whole >= THRESHOLDS["high"][0]:
            issues.append(Issue("offensive", offset, offset + len(portion), portion[:80], whole))
        return _Step(risk, max(risk, 1.0 - risk), issues)

    async def _judged(self, text: str, token: CancelToken) -> _Step:
        judge = self._judge
        assert judge is not None, "load() with judge_model first"
        risk, answer = await asyncio.to_thread(judge.judge, text, token)
        confidence = 0.0 if risk == 0.5 else 1.0  # an answer that is neither: no opinion
        issues = [Issue(JUDGE_CHECK, 0, len(text), answer[:80], risk)] if risk > 0 else []
        return _Step(risk, confidence, issues, {"judge_answer": answer[:200],
                                                "judge_model": judge.model_name})


@dataclass(frozen=True, slots=True)
class _Step:
    """What one check found in one portion; `extra` joins the step's metadata."""

    risk: float
    confidence: float
    issues: list[Issue]
    extra: Mapping[str, Any] = field(default_factory=dict)


def _offensive_issues(model: ProfanityModel, sentence: str, offset: int, p: float) -> list[Issue]:
    words = model.offensive_words(sentence, OFFENSIVE_WORD_WEIGHT)
    if not words:
        return [Issue("offensive", offset, offset + len(sentence), sentence[:80], p)]
    return [Issue("offensive", offset + a, offset + b, sentence[a:b], p) for a, b in words]


def _chosen_checks(params: Mapping[str, Any]) -> list[str]:
    chosen = params.get("checks")
    if chosen is None:
        return [*CHECKS, JUDGE_CHECK] if params.get("judge_model") else list(CHECKS)
    unknown = [c for c in chosen if c not in (*CHECKS, JUDGE_CHECK)]
    if unknown or not chosen:
        known = ", ".join((*CHECKS, JUDGE_CHECK))
        raise BreezeError("E400", f"unknown check {unknown[0] if unknown else '(none)'!r} "
                                  f"(known: {known})")
    if JUDGE_CHECK in chosen and not params.get("judge_model"):
        raise BreezeError("E400", f"the {JUDGE_CHECK} check needs the judge_model parameter")
    return list(dict.fromkeys(chosen))


def _portions(text: str) -> list[tuple[int, int]]:
    """(start, end) pieces of at most PORTION_CHARS, cut at a space where there is one."""
    portions: list[tuple[int, int]] = []
    start = 0
    while len(text) - start > PORTION_CHARS:
        cut = text.rfind(" ", start + PORTION_CHARS // 2, start + PORTION_CHARS)
        end = cut + 1 if cut >= 0 else start + PORTION_CHARS
        portions.append((start, end))
        start = end
    portions.append((start, len(text)))
    return portions


class _Scan:
    """The verdict so far, and the results that report it."""

    def __init__(self, strictness: str, total_checks: int) -> None:
        self.strictness = strictness
        self.total = total_checks
        self.completed = 0
        self.risk = 0.0
        self.issues: list[dict[str, Any]] = []
        self.by_check: dict[str, tuple[str, float, float]] = {}  # status, risk, confidence
        self.progress = 0.0

    @property
    def status(self) -> str:
        statuses = [s for s, _, _ in self.by_check.values()]
        return max(statuses, key=STATUSES.index, default="safe")

    def step(self, check: str, portion: tuple[int, int], step: _Step, *, done: float,
             began: float) -> InferenceResult:
        """`done`: the share of this check's portions analysed, this one included."""
        risk, confidence = step.risk, step.confidence
        found = [self._issue(check, i) for i in step.issues]
        found = [i for i in found if i["status"] != "safe"]
        status = max((i["status"] for i in found), key=STATUSES.index, default="safe")
        before = self.by_check.get(check, ("safe", 0.0, 1.0))
        self.by_check[check] = (max(before[0], status, key=STATUSES.index),
                                max(before[1], risk), min(before[2], confidence))
        self.issues += found
        self.risk = max(self.risk, risk)
        if done >= 1.0:
            self.completed += 1
        self.progress = (self.completed + (done if done < 1.0 else 0.0)) / self.total
        return InferenceResult.success(
            self._outputs(),
            {
                "check_type": check,
                "check_status": status,
                "confidence": round(confidence, 4),
                "detected_issues": found,
                "total_checks": self.total,
                "completed_checks": self.completed,
                "text_portion_analyzed": list(portion),
                "strictness": self.strictness,
                "check_ms": round((time.perf_counter() - began) * 1000, 3),
                "no_coalesce": True,  # each step reports its own findings: never merged
                **step.extra,
            },
            partial=True,
        )

    def terminal(self, *, cancelled: bool) -> InferenceResult:
        decisive = max(self.by_check.values(), key=lambda v: v[1], default=("safe", 0.0, 1.0))
        metadata: dict[str, Any] = {
            "check_type": "overall",
            "confidence": round(decisive[2], 4),
            "detected_issues": sorted(self.issues, key=lambda i: i["span"][0]),
            "total_checks": self.total,
            "completed_checks": self.completed,
            "checks": {name: v[0] for name, v in self.by_check.items()},
            "strictness": self.strictness,
        }
        if cancelled:
            metadata["finish_reason"] = "cancelled"
        else:
            self.progress = 1.0
        return InferenceResult.success(self._outputs(), metadata)

    def _outputs(self) -> dict[str, Any]:
        return {"safety_status": self.status, "risk_score": round(self.risk, 4),
                "analysis_progress": round(self.progress, 4)}

    def _issue(self, check: str, issue: Issue) -> dict[str, Any]:
        return {
            "type": issue.type,
            "check": check,
            "span": [issue.start, issue.end],
            "text_excerpt": issue.excerpt,
            "score": round(issue.score, 4),
            "status": status_for(issue.score, self.strictness),
        }


def _package_version() -> str:
    try:
        return version("alt-profanity-check")
    except PackageNotFoundError:
        return "?"


RUNNERS = [GuardianRunner]
