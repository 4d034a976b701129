"""Retry with exponential backoff (the seed's Error Recovery), safe for streams.

A recoverable error is retried only while the consumer has seen no output from the attempt,
so a retry can never duplicate or contradict text already shown.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass

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

    def delay(self, attempt: int) -> float:
        """Delay before retry number `attempt` (1-based): base, base*factor, base*factor^2..."""
        return min(self.max_delay_s, self.base_delay_s * self.factor ** (attempt - 1))


async def stream_with_retry(
    open_stream: Callable[[], AsyncIterator[InferenceResult]],
    policy: RetryPolicy,
    token: CancelToken,
) -> AsyncGenerator[InferenceResult, None]:
    """Yield the results of `open_stream()`, reopening it after a recoverable error that
    arrived before any output; after `max_retries` such failures, one E102 error result."""
    attempt = 0
    while True:
        seen_output = False
        retry_error: RunnerError | None = None
        stream = open_stream()
        try:
            async for result in stream:
                error = result.error
                if error is not None and error.recoverable and not seen_output:
                    if attempt < policy.max_retries and not token.cancelled:
                        retry_error = error
                        break
                    if attempt > 0:
                        message = f"Streaming failed after {attempt} retries: {error.message}"
                        result = InferenceResult.failure(
                            RunnerError("E102", message, True), result.outputs, result.metadata
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
        delay = policy.delay(attempt)
        log.info("retry %d/%d in %.2fs after %s", attempt, policy.max_retries, delay, retry_error)
        await token.sleep(delay)
        if token.cancelled:
            return  # the engine ends the request as cancelled


async def aclose(stream: AsyncIterator[InferenceResult]) -> None:
    """Close an async iterator that may be a generator (so its `finally` runs now)."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
