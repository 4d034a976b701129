"""The chat app under generation: tokens/s of a reply rendered in the headless app vs
`breeze ask --json` on the same prompt (greedy, 256 tokens), and the delay from a result's
arrival at the screen to the next paint (p50 / p95)."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPT = "Write a long story about a dragon who learns to fly."
PARAMS = {"temperature": 0.0, "repeat_penalty": 1.0, "max_tokens": 256}
RUNS = 5


def _cli_tokens_per_second() -> float:
    breeze = str(Path(sys.executable).with_name("breeze"))
    args = [breeze, "ask", PROMPT, "--json"]
    for key, value in PARAMS.items():
        args += ["-p", f"{key}={value}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=300)
    last = json.loads(out.stdout.splitlines()[-1])
    return float(last["metadata"]["tokens_per_second"])


async def _app_run(delays: list[float]) -> float:
    from breeze.tui.app import create_app
    from breeze.tui.store import Store
    from breeze.tui.widgets.message import MessageView

    original = MessageView.append

    async def timed_append(self: MessageView, delta: str) -> None:
        arrived = time.perf_counter()
        await original(self, delta)
        self.call_after_refresh(lambda: delays.append((time.perf_counter() - arrived) * 1000))

    MessageView.append = timed_append  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            app = create_app(store=Store(Path(tmp) / "s.sqlite3"))
            async with app.run_test(size=(100, 40)) as pilot:
                while app.chat.status.state != "ready":
                    await pilot.pause(0.05)
                app.conversation.params = dict(PARAMS)
                await app.chat.send(PROMPT)
                # awaited, not polled with pilot.pause(): that posts a callback to every
                # widget each time, work a user's app never does
                for worker in app.chat.workers:
                    if worker.group == "reply":
                        await worker.wait()
                message = app.store.messages(app.conversation.session_id)[-1]
                assert message.metadata is not None
                return float(message.metadata["tokens_per_second"])
    finally:
        MessageView.append = original  # type: ignore[method-assign]


def main() -> None:
    """App and CLI runs alternate, so that load from elsewhere falls on both alike; the
    ratio is the median of the pairs' ratios."""
    delays: list[float] = []
    pairs = []
    for _ in range(RUNS):
        app_tps = asyncio.run(_app_run(delays))
        pairs.append((app_tps, _cli_tokens_per_second()))
    ratios = sorted(app / cli for app, cli in pairs)
    delays.sort()
    print(json.dumps({
        "benchmark": "tui_render",
        "app_tokens_per_s": round(statistics.median(app for app, _ in pairs), 1),
        "cli_tokens_per_s": round(statistics.median(cli for _, cli in pairs), 1),
        "ratio": round(statistics.median(ratios), 3),
        "ratio_range": [round(ratios[0], 3), round(ratios[-1], 3)],
        "paint_delay_ms_p50": round(statistics.median(delays), 1),
        "paint_delay_ms_p95": round(delays[int(0.95 * (len(delays) - 1))], 1),
        "paints": len(delays),
    }), flush=True)


if __name__ == "__main__":
    main()
