"""Scripted in-memory runners for engine tests. Test-only: the app never registers them."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

from breeze.engine import (
    BlockingRunner,
    BreezeError,
    CancelToken,
    Capability,
    Emit,
    InferenceRequest,
    InferenceResult,
    ParamSchema,
    ParamSpec,
    Runner,
)

WORDS = "the quick brown fox jumps over the lazy dog and keeps running far away".split()


class ScriptedLLM(BlockingRunner):
    """Emits `max_tokens` words from a worker thread, `delay_s` apart; counts its work."""

    name = "scripted-llm"
    capabilities = frozenset({Capability.LLM})
    priority = 10

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.work_units = 0
        self.loads = 0
        self._lock = threading.Lock()

    def param_schema(self) -> ParamSchema:
        return ParamSchema(
            [
                ParamSpec("max_tokens", int, 20, minimum=0, maximum=1_000_000),
                ParamSpec("temperature", float, 0.7, minimum=0.0, maximum=2.0),
                ParamSpec("delay_s", float, None, minimum=0.0),
            ]
        )

    def load(self, params: object) -> None:
        self.loads += 1

    def generate(self, request: InferenceRequest, token: CancelToken, emit: Emit) -> None:
        delay = request.params.get("delay_s", self.delay_s)
        total = request.params["max_tokens"]
        text = ""
        with self._lock:
            for i in range(total):
                if token.cancelled:
                    break
                self.work_units += 1
                delta = WORDS[i % len(WORDS)] + " "
                text += delta
                meta = {"tokens_generated": i + 1, "progress_percent": 100 * (i + 1) // total}
                emit(InferenceResult.success({"text": text, "delta": delta}, meta, partial=True))
                if delay:
                    time.sleep(delay)
            reason = "cancelled" if token.cancelled else "length"
            emit(InferenceResult.success({"text": text}, {"finish_reason": reason}))


class FailingMidStream(ScriptedLLM):
    """Emits `fail_after` tokens, then its backend raises."""

    name = "scripted-failing"
    fail_after = 3

    def generate(self, request: InferenceRequest, token: CancelToken, emit: Emit) -> None:
        text = ""
        for i in range(self.fail_after):
            text += WORDS[i] + " "
            emit(InferenceResult.success({"text": text, "delta": WORDS[i] + " "}, partial=True))
        raise RuntimeError("backend exploded")


class HangingRunner(Runner):
    """Async runner: one partial, then waits until cancelled (checks the token)."""

    name = "scripted-hanging"
    capabilities = frozenset({Capability.LLM})
    priority = 5

    def __init__(self, honour_token: bool = True) -> None:
        self.honour_token = honour_token
        self.cleaned_up = 0

    async def stream(
        self, request: InferenceRequest, token: CancelToken
    ) -> AsyncIterator[InferenceResult]:
        try:
            yield InferenceResult.success({"text": "waiting", "delta": "waiting"}, partial=True)
            if self.honour_token:
                await token.wait_async()
                yield InferenceResult.success({"text": "waiting"}, {"finish_reason": "cancelled"})
            else:
                await asyncio.sleep(3600)
        finally:
            self.cleaned_up += 1


class FlakyRunner(Runner):
    """Fails with a recoverable error `failures` times before it streams."""

    name = "scripted-flaky"
    capabilities = frozenset({Capability.LLM})

    def __init__(self, failures: int, recoverable: bool = True) -> None:
        self.failures = failures
        self.recoverable = recoverable
        self.attempts = 0

    async def stream(
        self, request: InferenceRequest, token: CancelToken
    ) -> AsyncIterator[InferenceResult]:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise BreezeError("E102", f"connection refused (attempt {self.attempts})",
                              self.recoverable)
        yield InferenceResult.success({"text": "ok", "delta": "ok"}, partial=True)
        yield InferenceResult.success({"text": "ok"}, {"finish_reason": "stop"})


class OneShotRunner(Runner):
    """A runner that cannot stream: served through run()."""

    name = "scripted-oneshot"
    capabilities = frozenset({Capability.TTS})
    streaming = False

    async def run(self, request: InferenceRequest, token: CancelToken) -> InferenceResult:
        text = str(request.inputs.get("text", ""))
        return InferenceResult.success({"audio": text.encode(), "sample_rate": 16000})


class UnloadableRunner(ScriptedLLM):
    """Its model is missing: load fails with E501, so the registry falls back."""

    name = "scripted-missing-model"
    priority = 100

    def load(self, params: object) -> None:
        raise BreezeError("E501", "model file /nowhere/model.gguf does not exist")
