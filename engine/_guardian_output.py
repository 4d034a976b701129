"""The guardian's output checkpoint: a streamed reply checked as it streams.

With BLOCK and FILTER the consumer sees only checked text, and the shown text only grows.
Checks that find spans (personal data) let the reply stream word by word: only a tail that
could still grow into a sensitive span is held back (the word being written, which may
become an e-mail address or a key; a run of digit groups, which may become a card, IBAN or
phone number). Each check sees the held tail too, so a span that the release point would cut
moves that point back to the span's start: a span is shown masked whole, or not yet.
Checks that judge whole sentences (offensive language, prompt injection, a guard model) hold
the text back until a sentence is complete (engine.text decides, the way speech does); a very
long sentence is cut earlier, between two plain words. WARN shows the reply as it comes and
reports what the checks find. Each check also sees a little of the text before it, for
context ("call me on ...").
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator, Awaitable, Callable

from ._guardian_report import Report, blocked_result, describe, mask
from .cancel import CancelToken
from .retry import aclose
from .text import SentenceStream
from .types import InferenceResult

__all__ = ["OutputGuard"]

CONTEXT_CHARS = 64  # shown text a check sees before the new sentence
MAX_HOLD_CHARS = 400  # an unfinished sentence longer than this is released in parts
# A space between two plain words (the one after it complete): nothing sensitive spans it.
_SAFE_CUT = re.compile(r"(?<=[A-Za-z][,;:]|[A-Za-z]{2}) (?=[A-Za-z]+\s)")
# Tails that may still grow into a sensitive span: the word being written, digit groups (a
# card, phone or account number), and an IBAN's country code and check digits with what
# follows. No such span is longer than HOLD_MAX_CHARS.
_OPEN_WORD = re.compile(r"\S+$")
_OPEN_NUMBER = re.compile(r"[+(]?\d[\d ().+/-]*$")
_OPEN_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){0,32} ?$")
HOLD_MAX_CHARS = 64

Check = Callable[[str], Awaitable[Report]]


class OutputGuard:
    def __init__(self, check: Check, strategy: str, fail_closed: bool, token: CancelToken,
                 *, by_span: bool = False) -> None:
        self.check = check
        self.token = token
        self.strategy = strategy  # "block" | "warn" | "filter"
        self.by_span = by_span  # the checks find spans: release all but an open tail
        self.sentences = SentenceStream()
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
        return self._shown(result, released) if released else None

    async def _terminal(self, result: InferenceResult) -> InferenceResult:
        text = result.outputs.get("text")
        if not isinstance(text, str):
            return self._annotate(result)
        self.raw = text
        end = len(text)
        if self.by_span and result.metadata.get("finish_reason") != "stop":
            end = self._open_tail()  # a cut reply: its open tail may be half a number
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
        """Where the text that can be checked now ends: before the open tail (span checks),
        else after the last complete sentence."""
        if self.by_span:
            return self._open_tail()
        self.sentences.skip_to(self.checked)
        self.sentences.feed(self.raw)
        end = self.sentences.end
        rest = self.raw[end:]
        if end == self.checked and len(rest) > MAX_HOLD_CHARS:
            cuts = [m.end() for m in _SAFE_CUT.finditer(rest)]
            end += cuts[-1] if cuts else 0
        return end

    def _open_tail(self) -> int:
        """Where the tail that may still grow into a sensitive span starts."""
        raw, hold = self.raw, len(self.raw)
        window = max(self.checked, len(raw) - HOLD_MAX_CHARS)
        for pattern in (_OPEN_WORD, _OPEN_NUMBER, _OPEN_IBAN):
            found = pattern.search(raw, window)
            if found is not None:
                hold = min(hold, found.start())
        return hold

    def _context_start(self) -> int:
        """Where a check's text starts: some shown text before the new part, from a word's
        start (a pattern must not match from the middle of a word)."""
        start = max(0, self.checked - CONTEXT_CHARS)
        if start > 0:
            space = self.raw.rfind(" ", 0, start)
            start = space + 1
        return start

    async def _check_upto(self, end: int) -> tuple[Report, int]:
        """Check raw[checked:end] (with some context); record and return what it found, and
        where the release ends. Span checks also see the held tail: a span the release would
        cut ends the release at its start."""
        start = self._context_start()
        scope = len(self.raw) if self.by_span else end
        report = (await self.check(self.raw[start:scope])).within(start, self.checked)
        if self.by_span:
            for issue in sorted(report.issues, key=lambda i: -i["span"][0]):
                first, last = issue["span"]
                if first < end < last:
                    end = first
            report = report.starting_before(end)
        self.report = self.report.merged(report)
        return report, end

    async def _warn(self, end: int) -> None:
        """WARN: the text is shown as it comes; a failed check still stops it when closed."""
        if end <= self.checked:
            return
        report, end = await self._check_upto(end)
        self.checked = end
        if report.error is not None and self.fail_closed:
            self._block(f"the guardian could not check the reply ({report.error})")

    async def _release(self, end: int) -> str | None:
        """Check raw[checked:end] and return it as the consumer may see it; None (and
        `stop` set) when it must not be shown."""
        report, end = await self._check_upto(end)
        if end <= self.checked:
            return ""
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
        metadata = result.metadata
        if "current_token" in metadata:  # never a token the consumer has not been shown
            metadata = {**metadata, "current_token": released}
        return self._annotate(dataclasses.replace(result, outputs=outputs, metadata=metadata))

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
