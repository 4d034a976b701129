"""A stopped reply offers ctrl+g (continue) only when the chat's runner can continue it: the
OpenAI-compatible runner, on a real llama.cpp server, cannot; llama.cpp in-process can."""

from __future__ import annotations

from breeze.engine import Capability, Engine, EngineSettings, Registry
from breeze.runners.llama_cpp import LlamaCppRunner
from breeze.runners.openai_compat import OpenAIRunner

from ..runners.conftest import shared_server
from .conftest import finished, wait_for
from .test_chat import SIZE, type_and_send, views


def note(view) -> str:
    return str(view.query_one(".note").render())


async def test_ctrl_g_is_offered_only_by_a_runner_that_continues_replies(make_app):
    settings = EngineSettings(preferred_runners={Capability.LLM: "openai"})
    registry = Registry([LlamaCppRunner, OpenAIRunner(shared_server().profile())])
    app = make_app(engine=Engine(registry, settings))
    async with app.run_test(size=SIZE) as pilot:
        app.conversation.params = {"max_tokens": 2000, "temperature": 0}
        await type_and_send(pilot, "Write a long essay about the sea.")  # greedy: 1900 tokens
        await wait_for(pilot, lambda: len(views(app)) == 2 and len(views(app)[1].text) > 20)
        await pilot.press("escape")
        await wait_for(pilot, lambda: views(app)[1].state == "stopped")
        reply = views(app)[1]
        assert reply.text and app.store.messages(app.conversation.session_id)[-1].metadata
        assert note(reply) == "stopped — ctrl+r regenerate"

        stopped = reply.text
        await pilot.press("ctrl+g")  # not sent: the server would start a new reply instead
        await pilot.pause(0.3)
        assert reply.state == "stopped" and reply.text == stopped and not app.chat.busy
        assert any("does not continue" in n.message for n in app._notifications)

        app.engine.settings.preferred_runners = {Capability.LLM: "llama_cpp"}
        app.chat.show_reply_hints()  # what saving the settings does
        assert note(reply) == "stopped — ctrl+r regenerate · ctrl+g continue"
        app.conversation.params = {"max_tokens": 8}
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: finished(reply))
        assert reply.text.startswith(stopped) and len(reply.text) > len(stopped)
        saved = app.store.messages(app.conversation.session_id)[-1]
        assert saved.metadata["runner_name"] == "llama_cpp"
