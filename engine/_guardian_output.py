"""The guardian's output checkpoint: a streamed reply checked a sentence at a time.

With BLOCK and FILTER the consumer sees only checked text: the unchecked tail of the reply
is held back until a sentence is complete (engine.text decides, the way speech does), then
that sentence is checked and released, masked where needed, so the shown text only grows.
A very long sentence is cut earlier, between two plain words, where no number, address or
key can be split in two. WARN shows the reply as it comes and reports what the checks find.
Each check also sees a little of the text before it, for context ("call me on ...").
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator, Awaitable, Callable

from ._guardian_report import Report, blocked_result, describe, mask
from .cancel import CancelToken
from .retry import aclose
from .text import split_complete_sentences
from .types import InferenceResult

__all__ = ["OutputGuard"]

CONTEXT_CHARS = 64  # shown text a check sees before the new sentence
MAX_HOLD_CHARS = 400  # an unfinished sentence longer than this is released in parts
# A space between two plain words (the one after it complete): nothing sensitive spans it.
_SAFE_CUT = re.compile(r"(?<=[A-Za-z][,;:]|[A-Za-z]{2}) (?=[A-Za-z]+\s)")

Check = Callable[[str], Awaitable[Report]]


class OutputGuard:
    def __init__(self, check: Check, strategy: str, fail_closed: bool, token: CancelToken) -> None:
        self.check = check
        self.token = token
        self.strategy = strategy  # "block" | "warn" | "filter"
        self.fail_closed = fail_closed
        self.raw = ""  # the runner's text so far
        self.checked = 0  # raw characters checked (and, unless WARN, released)
        self.shown = ""  # the text the consumer has seen
        self.report = Report("safe", 0.0, checks=0)
        self.masked = False
        self.stop: InferenceResult | None = None  # the G100 terminal once blocked

    async def run(self, results: AsyncIterator[InferenceResult]) -> AsyncIterator[InferenceResult]:
        try:
            async for result in results:
                if not result.partial:
                    yield await self._terminal(result)
                    return
                out = await self._partial(result)
                if self.stop is not None:
                    # the model stops now: the token reaches a backend thread at once, while
                    # closing the stream only reaches it once the nested generators are closed
                    self.token.cancel("blocked by the guardian")
                    await aclose(results)
                    yield self.stop
                    return
                if out is not None:
                    yield out
        finally:
            await aclose(results)

    async def _partial(self, result: InferenceResult) -> InferenceResult | None:
        text = result.outputs.get("text")
        if not isinstance(text, str):
            return result  # progress without text (prompt evaluation)
        self.raw = text
        end = self._boundary()
        if self.strategy == "warn":
            await self._warn(end)
            if self.stop is not None:
                return None
            self.shown = text
            return self._annotate(result)
        if end <= self.checked:
            return None  # nothing checked to release yet
        released = await self._release(end)
        return None if released is None else self._shown(result, released)

    async def _terminal(self, result: InferenceResult) -> InferenceResult:
        text = result.outputs.get("text")
        if not isinstance(text, str):
            return self._annotate(result)
        self.raw = text
        end = len(text)
        if self.strategy == "warn":
            await self._warn(end)
            if self.stop is None:
                return self._annotate(result)
        else:
            released = await self._release(end) if end > self.checked else ""
            if self.stop is None:
                return self._shown(result, released or "")
        if result.error is not None:  # the runner's own error wins; the unchecked rest goes
            outputs = {**result.outputs, "text": self.shown, "delta": ""}
            return self._annotate(dataclasses.replace(result, outputs=outputs))
        return self.stop

    def _boundary(self) -> int:
        """Where the text that can be checked now ends: after the last complete sentence."""
        _, rest = split_complete_sentences(self.raw[self.checked:])
        end = len(self.raw) - len(rest)
        if end == self.checked and len(rest) > MAX_HOLD_CHARS:
            cuts = [m.end() for m in _SAFE_CUT.finditer(rest)]
            end += cuts[-1] if cuts else 0
        return end

    async def _check_upto(self, end: int) -> Report:
        """Check raw[checked:end] (with some context); record and return what it found."""
        start = max(0, self.checked - CONTEXT_CHARS)
        report = (await self.check(self.raw[start:end])).within(start, self.checked)
        self.report = self.report.merged(report)
        return report

    async def _warn(self, end: int) -> None:
        """WARN: the text is shown as it comes; a failed check still stops it when closed."""
        if end <= self.checked:
            return
        report = await self._check_upto(end)
        self.checked = end
        if report.error is not None and self.fail_closed:
            self._block(f"the guardian could not check the reply ({report.error})")

    async def _release(self, end: int) -> str | None:
        """Check raw[checked:end] and return it as the consumer may see it; None (and
        `stop` set) when it must not be shown."""
        report = await self._check_upto(end)
        chunk = self.raw[self.checked:end]
        if report.error is not None:
            if self.fail_closed:
                self._block(f"the guardian could not check the reply ({report.error})")
                return None
        elif report.unsafe:
            if self.strategy == "block":
                self._block(f"{describe(report.unsafe)} in the reply (risk {report.risk:.2f})")
                return None
            chunk = mask(chunk, report.unsafe, offset=self.checked)
            self.masked = True
        self.checked = end
        self.shown += chunk
        return chunk

    def _block(self, message: str) -> None:
        info = self.report.info("output", self.strategy, "blocked")
        self.stop = blocked_result(message, {"text": self.shown}, info)

    def _shown(self, result: InferenceResult, released: str) -> InferenceResult:
        outputs = {**result.outputs, "text": self.shown, "delta": released}
        if "sentence" in outputs:
            outputs["sentence"] = released.strip()
        return self._annotate(dataclasses.replace(result, outputs=outputs))

    def _annotate(self, result: InferenceResult) -> InferenceResult:
        report = self.report
        if self.stop is not None:
            action = "blocked"
        elif report.error is not None:
            action = "unchecked"
        elif self.masked:
            action = "filtered"
        else:
            action = "warned" if report.issues else "passed"
        return result.with_metadata(guardian_output=report.info("output", self.strategy, action))
