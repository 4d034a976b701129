"""The guardian pipeline: safety checks around LLM and VLM turns (the engine's `Guard`).

The prompt is checked before a runner is chosen; the reply is checked as it streams, a
sentence at a time. Each checkpoint has a strategy:

- BLOCK: an unsafe prompt ends the request with G100 before the model runs; an unsafe
  sentence of the reply stops the model, keeps what was shown and ends with G100.
- WARN: the results carry the findings in metadata["guardian_input"] / ["guardian_output"].
- FILTER: the offending spans are masked ("[card number]", "****") in what the consumer
  sees; the reply is held back until a sentence is complete and checked, so nothing
  unchecked is ever shown and the shown text only grows.

The checks themselves are GUARDIAN requests submitted to the engine (runners/guardian.py),
so this module imports no model library. When they fail (no guardian runner, an error),
`fail_closed` decides: block with G100 (the default) or let the text through with the
error in metadata. Either way the failure is logged and reported, never silent.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._guardian_output import OutputGuard
from ._guardian_report import Report, blocked_result, describe, mask
from .cancel import CancelToken
from .errors import BreezeError
from .guard import Guard, GuardVerdict
from .types import Capability, InferenceRequest, InferenceResult

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["Checkpoint", "Guardian", "GuardianSettings", "Strategy", "make_guard"]

log = logging.getLogger("breeze.guardian")

STRICTNESS = ("low", "medium", "high")
KNOWN_CHECKS = ("offensive", "personal_data", "prompt_injection", "llm_judge")
# Checks that find spans in a text (not verdicts on whole sentences): a reply streams past them.
SPAN_CHECKS = frozenset({"personal_data"})


class Strategy(enum.StrEnum):
    BLOCK = "block"
    WARN = "warn"
    FILTER = "filter"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a checkpoint does (`strategy`) about the findings of which `checks`."""

    strategy: Strategy = Strategy.OFF
    checks: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.strategy is not Strategy.OFF and bool(self.checks)


@dataclass(frozen=True, slots=True)
class GuardianSettings:
    enabled: bool = True
    strictness: str = "medium"  # low | medium | high: the runner's thresholds
    input: Checkpoint = field(default_factory=lambda: Checkpoint(Strategy.BLOCK, ("offensive",)))
    output: Checkpoint = field(
        default_factory=lambda: Checkpoint(Strategy.FILTER, ("personal_data",))
    )
    fail_closed: bool = True  # a failed check blocks (G100) rather than lets through
    runner: str | None = None  # the GUARDIAN runner to use; None: by priority
    judge_model: str | None = None  # the guard model of the "llm_judge" check

    def __post_init__(self) -> None:
        if self.strictness not in STRICTNESS:
            raise BreezeError("E400", f"guardian strictness must be one of {STRICTNESS}, "
                                      f"got {self.strictness!r}")
        for checkpoint in (self.input, self.output):
            unknown = set(checkpoint.checks) - set(KNOWN_CHECKS)
            if unknown:
                raise BreezeError("E400", f"unknown guardian check {sorted(unknown)[0]!r} "
                                          f"(known: {', '.join(KNOWN_CHECKS)})")

    @classmethod
    def default(cls) -> GuardianSettings:
        """On: prompts with offensive language are blocked, personal data in replies is
        masked, at medium strictness; a failed check blocks."""
        return cls()

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> GuardianSettings:
        """From the config file's [guardian] table (keys as in `to_mapping`)."""
        base = cls()
        for key in ("enabled", "fail_closed"):
            if not isinstance(table.get(key, True), bool):
                raise BreezeError("E400", f"guardian {key} must be true or false, "
                                          f"got {table[key]!r}")
        for key in ("strictness", "input", "output", "runner", "judge_model"):
            if not isinstance(table.get(key, ""), str):
                raise BreezeError("E400", f"guardian {key} must be a string, got {table[key]!r}")
        for key in ("input_checks", "output_checks"):
            checks = table.get(key, [])
            if not isinstance(checks, list) or not all(isinstance(c, str) for c in checks):
                raise BreezeError("E400", f"guardian {key} must be a list of check names, "
                                          f"got {checks!r}")
        try:
            return cls(
                enabled=table.get("enabled", base.enabled),
                strictness=table.get("strictness", base.strictness),
                input=_checkpoint(table, "input", base.input),
                output=_checkpoint(table, "output", base.output),
                fail_closed=table.get("fail_closed", base.fail_closed),
                runner=table.get("runner") or None,
                judge_model=table.get("judge_model") or None,
            )
        except ValueError as exc:
            raise BreezeError("E400", f"[guardian] {exc}") from None

    def to_mapping(self) -> dict[str, Any]:
        table: dict[str, Any] = {
            "enabled": self.enabled,
            "strictness": self.strictness,
            "input": self.input.strategy.value,
            "input_checks": list(self.input.checks),
            "output": self.output.strategy.value,
            "output_checks": list(self.output.checks),
            "fail_closed": self.fail_closed,
        }
        if self.runner:
            table["runner"] = self.runner
        if self.judge_model:
            table["judge_model"] = self.judge_model
        return table


def _checkpoint(table: Mapping[str, Any], name: str, default: Checkpoint) -> Checkpoint:
    strategy = Strategy(str(table.get(name, default.strategy.value)).lower())
    checks = table.get(f"{name}_checks", default.checks)
    return Checkpoint(strategy, tuple(str(c) for c in checks))


def make_guard(settings: GuardianSettings | None = None) -> Guard | None:
    """The guard for `EngineSettings.guard`; None when the guardian is turned off."""
    settings = settings or GuardianSettings.default()
    return Guardian(settings) if settings.enabled else None


class Guardian:
    """Implements engine.guard.Guard."""

    def __init__(self, settings: GuardianSettings) -> None:
        self.settings = settings

    async def check(self, engine: Engine, text: str, checkpoint: Checkpoint) -> Report:
        """One GUARDIAN request over `text` with the checkpoint's checks."""
        params: dict[str, Any] = {"strictness": self.settings.strictness,
                                  "checks": list(checkpoint.checks)}
        if self.settings.judge_model:
            params["judge_model"] = self.settings.judge_model
        request = InferenceRequest({"text": text}, params, capability=Capability.GUARDIAN)
        began = time.perf_counter()
        result = await engine.run_here(request, runner=self.settings.runner)
        report = Report.of(result, (time.perf_counter() - began) * 1000)
        if report.error is not None:
            log.warning("the guardian could not check a text: %s", report.error)
        return report

    async def check_input(self, engine: Engine, request: InferenceRequest) -> GuardVerdict:
        checkpoint = self.settings.input
        text = _prompt_text(request)
        if not checkpoint.active or not text.strip():
            return GuardVerdict()
        report = await self.check(engine, text, checkpoint)
        strategy, unsafe = checkpoint.strategy.value, report.unsafe
        if report.error is not None:
            if self.settings.fail_closed:
                message = f"the guardian could not check the prompt ({report.error})"
                return _blocked(report, strategy, message)
            return _passed(report, strategy, "unchecked")
        if unsafe and checkpoint.strategy is Strategy.BLOCK:
            message = f"{describe(unsafe)} in the prompt (risk {report.risk:.2f})"
            return _blocked(report, strategy, message)
        if unsafe and checkpoint.strategy is Strategy.FILTER:
            masked = _with_prompt_text(request, mask(text, unsafe))
            return _passed(report, strategy, "filtered", masked)
        return _passed(report, strategy, "warned" if report.issues else "passed")

    def guard_output(
        self,
        engine: Engine,
        request: InferenceRequest,
        results: AsyncIterator[InferenceResult],
        token: CancelToken,
    ) -> AsyncIterator[InferenceResult]:
        checkpoint = self.settings.output
        if not checkpoint.active:
            return results

        async def check(text: str) -> Report:
            return await self.check(engine, text, checkpoint)

        by_span = (set(checkpoint.checks) <= SPAN_CHECKS
                   and request.params.get("stream_mode") != "sentence")
        guard = OutputGuard(check, checkpoint.strategy.value, self.settings.fail_closed, token,
                            by_span=by_span)
        return guard.run(results)


def _blocked(report: Report, strategy: str, message: str) -> GuardVerdict:
    info = report.info("input", strategy, "blocked")
    return GuardVerdict(blocked=blocked_result(message, {}, info))


def _passed(
    report: Report, strategy: str, action: str, request: InferenceRequest | None = None
) -> GuardVerdict:
    """The request goes on (`request`: the filtered one) with the verdict on every result."""
    return GuardVerdict(metadata={"guardian_input": report.info("input", strategy, action)},
                        request=request)


def _prompt_text(request: InferenceRequest) -> str:
    """What the user just said: the text input, else the last user message."""
    text = request.inputs.get("text")
    if isinstance(text, str):
        return text
    for message in reversed(request.inputs.get("messages") or ()):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


def _with_prompt_text(request: InferenceRequest, text: str) -> InferenceRequest:
    inputs = dict(request.inputs)
    if isinstance(inputs.get("text"), str):
        inputs["text"] = text
    else:
        messages = [dict(m) for m in inputs["messages"]]
        last_user = max(i for i, m in enumerate(messages) if m.get("role") == "user")
        messages[last_user]["content"] = text
        inputs["messages"] = messages
    return dataclasses.replace(request, inputs=inputs)
