"""The status bar: runner and model, state, TTFT, tokens/s from result metadata; the
microphone's level while dictating; whether replies are spoken."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual.reactive import reactive
from textual.widgets import Static

from .level_meter import level_bar


class StatusBar(Static):
    state: reactive[str] = reactive("starting")
    runner: reactive[str] = reactive("")
    model: reactive[str] = reactive("")
    ttft_ms: reactive[float | None] = reactive(None)
    tokens_per_second: reactive[float | None] = reactive(None)
    listening: reactive[bool] = reactive(False)
    mic_level: reactive[float | None] = reactive(None)  # dBFS while dictating
    mic_muted: reactive[bool] = reactive(False)
    speech_on: reactive[bool] = reactive(False)

    def update_from(self, metadata: Mapping[str, Any]) -> None:
        if metadata.get("runner_name"):
            self.runner = str(metadata["runner_name"])
        if metadata.get("model_name"):
            self.model = str(metadata["model_name"])
        if metadata.get("ttft_ms") is not None:
            self.ttft_ms = float(metadata["ttft_ms"])
        if metadata.get("tokens_per_second"):
            self.tokens_per_second = float(metadata["tokens_per_second"])

    def render(self) -> str:
        parts = [f"● {self.state}"]
        if self.runner:
            parts.append(f"{self.runner} · {self.model}" if self.model else self.runner)
        if self.ttft_ms is not None:
            parts.append(f"TTFT {self.ttft_ms:.0f} ms")
        if self.tokens_per_second:
            parts.append(f"{self.tokens_per_second:.1f} tok/s")
        if self.listening:
            parts.append("mic muted" if self.mic_muted else f"mic {level_bar(self.mic_level, 8)}")
        if self.speech_on:
            parts.append("speech on")
        parts.append("F1 help")
        return "  │  ".join(parts)
