"""Talk mode in the app, through real devices: the null sink is the room (Breeze speaks into
it and its monitor is the microphone, so Breeze hears itself), and recordings of human speech
played into it are the user. Three spoken turns, one of them cut in on."""

from __future__ import annotations

import asyncio
import subprocess

import pytest
from textual.widgets import Static

from breeze.engine.audio import Pcm
from breeze.tui.widgets.message import MessageView
from tests.e2e.test_dictate import heard
from tests.runners.test_audio_in import play, recording_streams
from tests.runners.test_audio_out import tts_sink  # noqa: F401 (fixture)
from tests.runners.test_whisper_speech import human_speech

from .conftest import played, wait_for

pytestmark = pytest.mark.usefixtures("tts_sink")
SINK = "breeze_tts"


def say(name: str, tmp_path) -> subprocess.Popen[bytes]:
    clip = next(c for c in human_speech() if c.name.endswith(name))
    return play(Pcm(clip.pcm, 16000), tmp_path / f"{name}.wav", SINK)


def views(app, role: str) -> list[MessageView]:
    return [v for v in app.chat.query(MessageView) if v.role == role]


def settled(view: MessageView) -> bool:
    return view.state in ("complete", "stopped", "interrupted")


async def test_three_spoken_turns_with_a_barge_in(make_app, tmp_path):
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        app.conversation.params = {"max_tokens": 50, "temperature": 0.0}
        await pilot.press("f3")
        assert app.chat.status.state.startswith("talk")
        await wait_for(pilot, lambda: app.chat.status.state == "talk · listening", within=120)
        states = set()

        await played(pilot, say("0880", tmp_path))
        await wait_for(pilot, lambda: any(v.has_class("-speaking")
                                          for v in views(app, "assistant")), within=60)
        await pilot.pause(1.0)  # into the reply, as people cut in
        states.add(app.chat.status.state)
        cutting_in = say("0930", tmp_path)
        await wait_for(pilot, lambda: len(views(app, "assistant")) == 2
                       and all(settled(v) for v in views(app, "assistant")), within=90)
        await played(pilot, cutting_in)
        await played(pilot, say("0870", tmp_path))
        await wait_for(pilot, lambda: len(views(app, "assistant")) == 3
                       and settled(views(app, "assistant")[2]), within=90)
        notes = [str(v.query_one(".note", Static).render()) for v in views(app, "assistant")]
        assert all("voice" in note and "transcript" in note for note in notes), notes
        await pilot.press("f3")
        await wait_for(pilot, lambda: not app.talk.active, within=30)
        assert app.chat.status.state == "ready"

    assert "talk · speaking" in states
    store = app.store
    messages = store.messages(app.conversation.session_id)
    users = [m for m in messages if m.role == "user"]
    replies = [m for m in messages if m.role == "assistant"]
    assert [m.voice for m in users] == ["dictated"] * 3
    assert [m.voice for m in replies] == ["spoken"] * 3
    assert replies[0].state == "interrupted" and replies[0].content  # what was heard of it
    assert [m.state for m in replies[1:]] != ["interrupted"] * 2, "Breeze cut itself off"
    assert all(r.metadata and r.metadata["talk"]["first_audio_ms"] for r in replies)
    said = heard(next(c.text for c in human_speech() if c.name.endswith("0880")))
    assert len(heard(users[0].content) & said) >= 0.6 * len(said), users[0].content


@pytest.fixture
def slow_start(monkeypatch):
    """Talk mode's start waits until the test sets this event (as when its models load)."""
    from breeze.tui import talk_controller

    go = asyncio.Event()
    open_talk = talk_controller.open_talk

    async def opened_later(*args, **kwargs):
        await go.wait()
        return await open_talk(*args, **kwargs)

    monkeypatch.setattr(talk_controller, "open_talk", opened_later)
    return go


async def test_what_is_typed_while_talk_mode_starts_is_answered_aloud(make_app, slow_start):
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        app.conversation.params = {"max_tokens": 8, "temperature": 0.0}
        await pilot.press("f3", *"Hello", "enter")
        assert app.talk.active and app.talk.session is None
        await app.preload().wait()  # as when the settings are saved: the chat's model loads
        assert app.chat.status.state == "talk · starting…", "the model's load hid talk mode"
        slow_start.set()
        await wait_for(pilot, lambda: len(views(app, "assistant")) == 1
                       and settled(views(app, "assistant")[0]), within=90)
        assert [v.role for v in app.chat.query(MessageView)] == ["user", "assistant"]
        await pilot.press("f3")
        await wait_for(pilot, lambda: not app.talk.active, within=30)
    user, reply = app.store.messages(app.conversation.session_id)
    assert (user.content, user.voice, reply.voice) == ("Hello", None, "spoken")


async def test_f3_again_while_talk_mode_starts_ends_it_before_it_listens(make_app, slow_start):
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("f3", "f3")
        assert app.talk.active, "it ends once its devices are open, not before"
        slow_start.set()
        await wait_for(pilot, lambda: not app.talk.active, within=120)
        await wait_for(pilot, lambda: app.chat.model_ready, within=60)
        assert app.chat.status.state == "ready"
    assert recording_streams(SINK) == 0
