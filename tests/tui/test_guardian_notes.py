"""The guardian's work shows in the chat: a masked e-mail is said to be filtered."""

from __future__ import annotations

from collections.abc import AsyncIterator

from breeze.engine import (
    CancelToken,
    Capability,
    Engine,
    EngineSettings,
    InferenceRequest,
    InferenceResult,
    Registry,
    Runner,
)
from breeze.engine.guardian import make_guard
from breeze.runners.guardian import GuardianRunner
from breeze.tui.app import create_app
from breeze.tui.widgets.message import MessageView

from .conftest import wait_for

REPLY = "Write to me at ada@example.com any day. Bye for now."


class TellsAnEmail(Runner):
    name = "tells-an-email"
    capabilities = frozenset({Capability.LLM})

    async def stream(self, request: InferenceRequest, token: CancelToken
                     ) -> AsyncIterator[InferenceResult]:
        text = ""
        for word in REPLY.split(" "):
            text += ("" if not text else " ") + word
            yield InferenceResult.success({"text": text}, partial=True)
        yield InferenceResult.success({"text": text}, {"finish_reason": "stop"})


async def test_filtered_reply_is_masked_and_says_so(store, monkeypatch, tmp_path):
    monkeypatch.setenv("BREEZE_CONFIG_DIR", str(tmp_path / "config"))
    engine = Engine(Registry([TellsAnEmail(), GuardianRunner()]),
                    EngineSettings(guard=make_guard()))
    app = create_app(engine, store)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.chat.send("How do I reach you?")
        await wait_for(pilot, lambda: app.chat.status.state == "ready")
        view = list(app.chat.query(MessageView))[-1]
        assert "ada@example.com" not in view.text and "[email]" in view.text
        note = str(view.query_one(".note").render())
        assert "guardian filtered this reply: an e-mail address" in note
        view.set_state(view.state)  # as a change of runner in the settings does: kept
        assert str(view.query_one(".note").render()) == note
