"""The chat's controller with no chat screen: any screen that hears its messages is a front
end. Replies stream to it and are saved; talk mode that cannot start says why."""

from __future__ import annotations

import pytest
from textual import on
from textual.app import App
from textual.message import Message
from textual.screen import Screen

from breeze.engine import Engine, EngineSettings
from breeze.engine.talk import TalkEnded
from breeze.runners import builtin_registry
from breeze.tui.chat_controller import ChatController, ReplyEnded, ReplyStarted, ReplyUpdate
from breeze.tui.config import AppConfig, VoiceConfig
from breeze.tui.talk_controller import TalkUpdate
from tests.runners.test_audio_out import tts_sink  # noqa: F401 (fixture)

from .conftest import wait_for


class Listener(Screen[None]):
    """A front end that only keeps what the controller tells it."""

    def __init__(self) -> None:
        super().__init__()
        self.heard: list[Message] = []

    @on(ReplyStarted)
    @on(ReplyUpdate)
    @on(ReplyEnded)
    @on(TalkUpdate)
    def _heard(self, message: Message) -> None:
        self.heard.append(message)


class Host(App[None]):
    def __init__(self, screen: Listener) -> None:
        super().__init__()
        self.listener = screen

    def on_mount(self) -> None:
        self.push_screen(self.listener)


@pytest.fixture
async def controller(store):
    engine = Engine(builtin_registry(), EngineSettings())
    yield lambda config: ChatController(engine, store, config)
    await engine.aclose()


async def test_a_reply_streams_to_whatever_screen_listens_and_is_saved(controller, store):
    chat = controller(AppConfig())
    listener = Listener()
    chat.attach(listener)
    async with Host(listener).run_test() as pilot:
        chat.conversation.params = {"max_tokens": 12, "temperature": 0.0}
        asked = chat.add_user("Name three colours.")
        reply = await chat.reply()
        assert chat.busy
        await wait_for(pilot, lambda: any(isinstance(m, ReplyEnded) for m in listener.heard),
                       within=120)
        assert chat.idle
    kinds = [type(m) for m in listener.heard]
    assert kinds[0] is ReplyStarted and kinds[-1] is ReplyEnded, kinds
    results = [m.item for m in listener.heard if isinstance(m, ReplyUpdate)]
    assert sum(r.partial for r in results) >= 2, "the reply did not stream"
    assert not results[-1].partial and results[-1].error is None
    user, saved = store.messages(chat.conversation.session_id)
    assert (user.id, user.content) == (asked, "Name three colours.")
    assert saved.content == reply.full_text != "" and saved.state in ("complete", "stopped")


@pytest.mark.usefixtures("tts_sink")
async def test_talk_mode_that_cannot_open_its_microphone_ends_with_the_error(controller):
    chat = controller(AppConfig(voice=VoiceConfig(microphone="no such microphone")))
    listener = Listener()
    chat.attach(listener)
    async with Host(listener).run_test() as pilot:
        chat.start_talk()
        await wait_for(pilot, lambda: any(isinstance(m, TalkUpdate) for m in listener.heard),
                       within=120)
        await wait_for(pilot, lambda: not chat.talk.active)
    ended = [m.event for m in listener.heard if isinstance(m, TalkUpdate)]
    assert len(ended) == 1 and isinstance(ended[0], TalkEnded), ended
    assert ended[0].reason == "error" and ended[0].error.code == "E501"
