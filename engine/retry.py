"""Retry with exponential backoff (the seed's Error Recovery), safe for streams.

A recoverable error is retried only while the consumer has seen no output from the attempt,
so a retry can never duplicate or contradict text already shown.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, replace

from .cancel import CancelToken
from .errors import RunnerError
from .types import InferenceResult

__all__ = ["RetryPolicy", "stream_with_retry"]

log = logging.getLogger("breeze.retry")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 3
    base_delay_s: float = 0.5
    factor: float = 2.0
    max_delay_s: float = 8.0
    # A backend that asks for a longer wait than this (Retry-After) is not retried.
    max_retry_after_s: float = 30.0

    def delay(self, attempt: int, error: RunnerError | None = None) -> float:
        """Delay before retry number `attempt` (1-based): base, base*factor, base*factor^2...,
        or longer when the backend asked for it."""
        backoff = min(self.max_delay_s, self.base_delay_s * self.factor ** (attempt - 1))
        asked = error.retry_after_s if error is not None else None
        return max(backoff, asked or 0.0)

    def allows(self, attempt: int, error: RunnerError) -> bool:
        """Whether retry number `attempt` may follow this error."""
        asked = error.retry_after_s or 0.0
        return attempt <= self.max_retries and asked <= self.max_retry_after_s


async def stream_with_retry(
    open_stream: Callable[[], AsyncIterator[InferenceResult]],
    policy: RetryPolicy,
    token: CancelToken,
) -> AsyncGenerator[InferenceResult, None]:
    """Yield the results of `open_stream()`, reopening it after a recoverable error that
    arrived before any output; after `max_retries` such failures, the last error, with its
    code, says how many retries were made."""
    attempt = 0
    while True:
        seen_output = False
        retry_error: RunnerError | None = None
        stream = open_stream()
        try:
            async for result in stream:
                error = result.error
                if error is not None and error.recoverable and not seen_output:
                    if policy.allows(attempt + 1, error) and not token.cancelled:
                        retry_error = error
                        break
                    if attempt > 0:
                        message = f"{error.message} (after {attempt} retries)"
                        result = InferenceResult.failure(
                            replace(error, message=message), result.outputs, result.metadata
                        )
                if attempt:
                    result = result.with_metadata(retries=attempt)
                seen_output = seen_output or bool(result.outputs)
                yield result
                if not result.partial:
                    return
        finally:
            await aclose(stream)
        if retry_error is None:
            return
        attempt += 1
        delay = policy.delay(attempt, retry_error)
        log.info("retry %d/%d in %.2fs after %s", attempt, policy.max_retries, delay, retry_error)
        await token.sleep(delay)
        if token.cancelled:
            return  # the engine ends the request as cancelled


async def aclose(stream: AsyncIterator[InferenceResult]) -> None:
    """Close an async iterator that may be a generator (so its `finally` runs now)."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
