"""The chat flows, driven with Pilot on the real llama.cpp runner."""

from __future__ import annotations

from textual import events
from textual.widgets import Markdown

from breeze.tui.screens.help import HelpScreen
from breeze.tui.screens.sessions import SessionsScreen
from breeze.tui.widgets.log_panel import LogPanel
from breeze.tui.widgets.message import MessageView
from breeze.tui.widgets.prompt import PromptInput

from .conftest import finished, wait_for

SIZE = (100, 32)


def views(app) -> list[MessageView]:
    return list(app.chat.query(MessageView))


async def type_and_send(pilot, text: str) -> None:
    for ch in text:
        await pilot.press(ch if ch != " " else "space")
    await pilot.press("enter")


async def start_long_reply(pilot, app) -> None:
    """Greedy, this prompt is known to run past 256 tokens: a key pressed next comes
    mid-reply."""
    app.conversation.params = {"max_tokens": 2000, "repeat_penalty": 1.0, "temperature": 0}
    await type_and_send(pilot, "Write a long story about a dragon who learns to fly.")
    await wait_for(pilot, lambda: len(views(app)) == 2 and len(views(app)[1].text) > 20)


async def test_prompt_works_before_the_model_is_ready(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        assert app.chat.status.state == "loading model…"
        assert app.focused is app.chat.query_one(PromptInput)
        await type_and_send(pilot, "Hi")  # typed before the model is loaded
        await wait_for(pilot, lambda: finished(views(app)[-1]))
        assert views(app)[0].text == "Hi" and views(app)[-1].text
        assert app.chat.status.state == "ready"
        assert "SmolLM2" in app.chat.status.render()
        assert "tok/s" in app.chat.status.render()


async def test_the_chat_follows_a_reply_unless_the_user_scrolls_up_to_read(make_app):
    app = make_app()
    async with app.run_test(size=(80, 16)) as pilot:
        log = app.chat.query_one("#messages")
        await start_long_reply(pilot, app)
        await wait_for(pilot, lambda: log.max_scroll_y > 6)
        assert log.scroll_y == log.max_scroll_y  # the reply's end is in view as it grows

        for _ in range(2):  # the wheel, as a user reading back
            log.post_message(events.MouseScrollUp(log, 1, 1, 0, -1, 0, False, False, False))
        await wait_for(pilot, lambda: log.scroll_y < log.max_scroll_y - 3)
        reading_at, length = log.scroll_y, log.max_scroll_y
        await wait_for(pilot, lambda: log.max_scroll_y > length + 2)
        assert log.scroll_y == reading_at  # the text being read stays put

        await pilot.press("escape")
        await wait_for(pilot, lambda: views(app)[1].state == "stopped")
        await type_and_send(pilot, "In one sentence: what is the capital of France?")
        await wait_for(pilot, lambda: app.chat.status.state == "ready" and len(views(app)) == 4)
        await pilot.pause()
        assert views(app)[3].text  # a new message brings the end back into view, and keeps it
        assert log.scroll_y == log.max_scroll_y


async def test_reply_streams_then_esc_stops_it_and_keeps_the_partial(make_app, store):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await start_long_reply(pilot, app)
        assert views(app)[1].state == "streaming"
        await pilot.press("escape")
        await wait_for(pilot, lambda: views(app)[1].state == "stopped")
        stopped = views(app)[1].text
        assert stopped and "stopped" in str(views(app)[1].query_one(".note").render())
        await pilot.pause(0.3)
        assert views(app)[1].text == stopped, "the reply went on after Esc"
        saved = store.messages(app.conversation.session_id)
        assert saved[-1].state == "stopped" and saved[-1].content == stopped

        app.conversation.params = {"max_tokens": 20}
        await pilot.press("ctrl+g")  # continue the stopped reply
        await wait_for(pilot, lambda: app.conversation.reply is None
                       and len(views(app)[1].text) > len(stopped))
        assert views(app)[1].text.startswith(stopped) and len(views(app)[1].text) > len(stopped)

        await pilot.press("ctrl+r")  # regenerate it
        await wait_for(pilot, lambda: len(views(app)) == 2 and app.conversation.reply is None
                       and views(app)[1].state in ("complete", "stopped") and views(app)[1].text)
        assert len(store.messages(app.conversation.session_id)) == 2


async def test_history_goes_to_the_model(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.conversation.params = {"max_tokens": 12}
        await type_and_send(pilot, "My name is Ada.")
        await wait_for(pilot, lambda: len(views(app)) == 2 and finished(views(app)[1]))
        await type_and_send(pilot, "What is my name?")
        await wait_for(pilot, lambda: len(views(app)) == 4 and finished(views(app)[3]))
        history = app.conversation.history()
        assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
        saved = app.store.messages(app.conversation.session_id)[-1]
        assert saved.metadata and saved.metadata["runner_name"] == "llama_cpp"


async def test_newline_keys_and_enter_sends(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a", "ctrl+j", "b")
        prompt = app.chat.query_one(PromptInput)
        assert prompt.text == "a\nb" and len(views(app)) == 0


async def test_markdown_renders_code_blocks_and_lists(make_app, store):
    session = store.new_session("md")
    store.add(session, "user", "show me")
    store.add(session, "assistant", "Steps:\n\n- one\n- two\n\n```python\nprint('hi')\n```\n")
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        body = views(app)[1].query_one(Markdown)
        kinds = {type(child).__name__ for child in body.query("*")}
        assert "MarkdownFence" in kinds and "MarkdownBulletList" in kinds


async def test_error_result_shows_its_code_and_the_app_goes_on(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.conversation.params = {"model": "/nonexistent/model.gguf"}
        await type_and_send(pilot, "hello")
        await wait_for(pilot, lambda: len(views(app)) == 2 and views(app)[1].state == "error")
        assert "E501" in str(views(app)[1].query_one(".note").render())
        app.conversation.params = {"max_tokens": 8}
        await type_and_send(pilot, "hello again")
        await wait_for(pilot, lambda: len(views(app)) == 4 and finished(views(app)[3]))
        # the error notice is not sent to the model as a reply
        assert all(m["content"] for m in app.conversation.history())


async def test_copy_reply(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.conversation.params = {"max_tokens": 8}
        await type_and_send(pilot, "Say hi")
        await wait_for(pilot, lambda: len(views(app)) == 2 and finished(views(app)[1]))
        await pilot.press("ctrl+b")
        assert app.clipboard == views(app)[1].text


async def test_help_lists_every_key_and_log_panel_shows_native_output(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        text = app.screen.query_one(Markdown).source
        keys = ("ctrl+q", "escape", "ctrl+r", "ctrl+g", "ctrl+b", "ctrl+o", "ctrl+l", "f2", "enter")
        for key in keys:
            assert key in text, key
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.chat.status.state == "ready")
        await pilot.press("ctrl+l")
        panel = app.chat.query_one(LogPanel)
        assert panel.display
        await wait_for(pilot, lambda: any("llama" in line.text for line in panel.lines), 5)


async def test_a_thread_logging_never_waits_for_the_app(make_app):
    """A library logging from its thread (llama.cpp while it loads) must not wait for the
    app's loop: the loop may be waiting for the log's lock at that moment."""
    import logging
    import threading

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+l")
        logger = logging.getLogger("breeze.test")
        thread = threading.Thread(target=logger.warning, args=("from a thread",))
        thread.start()
        thread.join(5)  # the loop is held here, as a loop waiting for a lock would be
        assert not thread.is_alive(), "the logging thread waited for the app's loop"
        panel = app.chat.query_one(LogPanel)
        await wait_for(pilot, lambda: any("from a thread" in line.text for line in panel.lines),
                       5)


async def test_sessions_resume_rename_delete_export(make_app, store, tmp_path):
    first = store.new_session("first chat")
    store.add(first, "user", "old question")
    store.add(first, "assistant", "old answer")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o")
        assert isinstance(app.screen, SessionsScreen)
        app.screen.export_dir = tmp_path / "exports"
        await pilot.press("e")
        exported = (tmp_path / "exports" / f"breeze-chat-{first}.md").read_text()
        assert "old question" in exported and "old answer" in exported
        await pilot.press("r")
        await pilot.press(*"renamed", "enter")
        assert store.title(first) == "renamed"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, SessionsScreen))
        assert [v.text for v in views(app)] == ["old question", "old answer"]
        await pilot.press("ctrl+o", "d", "escape")
        assert first in [s.id for s in store.sessions()], "one key press deleted a chat"
        await pilot.press("ctrl+o", "d", "d", "escape")
        assert first not in [s.id for s in store.sessions()]


async def test_quitting_mid_reply_stops_it_and_saves_all_it_wrote(make_app, store):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await start_long_reply(pilot, app)
        session = app.conversation.session_id
        await pilot.press("ctrl+q")
        shown = views(app)[1].text
    saved = store.messages(session)[-1]
    assert saved.state == "stopped"  # not "streaming", which the next start calls interrupted
    assert saved.content.startswith(shown) and saved.metadata["finish_reason"] == "cancelled"
    runner = app.engine.registry.get("llama_cpp")
    assert runner.model_name is None  # unloaded: the generation let go of the model


async def test_partial_reply_of_a_killed_app_is_kept_as_interrupted(tmp_path):
    from breeze.tui.store import Store

    path = tmp_path / "s.sqlite3"
    crashed = Store(path)
    session = crashed.new_session()
    crashed.add(session, "user", "question")
    crashed.add(session, "assistant", "half an ans", "streaming")
    # the process dies here: nothing closes the store
    reopened = Store(path)
    assert reopened.interrupted == 1
    assert [m.state for m in reopened.messages(session)] == ["complete", "interrupted"]
    assert reopened.messages(session)[1].content == "half an ans"


async def test_leaving_a_chat_mid_reply_saves_the_reply_and_the_app_goes_on(make_app, store):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await start_long_reply(pilot, app)
        left = app.conversation.session_id
        await pilot.press("ctrl+n")  # a new chat while the reply streams
        await wait_for(pilot, lambda: store.messages(left)[-1].state == "stopped")
        assert store.messages(left)[-1].content.strip()
        assert views(app) == [] and app.is_running
        assert app.chat.status.state == "ready"  # not "stopping" for a reply no longer shown

        app.conversation.params = {"max_tokens": 8}
        await type_and_send(pilot, "Say hello.")
        await wait_for(pilot, lambda: len(views(app)) == 2 and finished(views(app)[1]))
        assert app.conversation.session_id != left


async def test_choosing_the_open_chat_in_saved_chats_leaves_its_reply_running(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await start_long_reply(pilot, app)
        await pilot.press("ctrl+o")
        assert isinstance(app.screen, SessionsScreen)
        await pilot.press("enter")  # the open chat is the one highlighted first
        await wait_for(pilot, lambda: not isinstance(app.screen, SessionsScreen))
        reply = views(app)[1]
        shown = len(reply.text)
        await wait_for(pilot, lambda: len(reply.text) > shown + 20)  # still streaming into it
        assert app.chat.busy and reply.state == "streaming" and len(views(app)) == 2
        await pilot.press("escape")
        await wait_for(pilot, lambda: reply.state == "stopped")


async def test_deleting_the_open_chat_starts_a_new_one(make_app, store):
    session = store.new_session("doomed")
    store.add(session, "user", "old question")
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        assert [v.text for v in views(app)] == ["old question"]
        await pilot.press("ctrl+o", "d", "d", "escape")
        await wait_for(pilot, lambda: views(app) == [])
        app.conversation.params = {"max_tokens": 4}
        await type_and_send(pilot, "Hi there.")
        await wait_for(pilot, lambda: len(views(app)) == 2 and finished(views(app)[1]))
        kept = app.store.messages(app.conversation.session_id)
        assert [m.content for m in kept][0] == "Hi there." and app.is_running


async def test_renaming_the_open_chat_updates_its_title(make_app, store):
    session = store.new_session("before")
    store.add(session, "user", "a question")
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o", "r", "ctrl+u", *"after", "enter", "escape")
        await wait_for(pilot, lambda: "after" in str(app.chat.query_one("#title").render()))


def test_export_closes_a_code_block_a_stopped_reply_left_open(store):
    session = store.new_session("code")
    store.add(session, "user", "show code")
    store.add(session, "assistant", "Here:\n```python\nprint(1)", "stopped")
    store.add(session, "user", "and then?")
    store.add(session, "assistant", "half", "streaming")
    exported = store.export_markdown(session)
    assert "print(1)\n```\n\n*(stopped)*" in exported
    assert exported.count("```") == 2
    assert "*(still being written)*" in exported


async def test_a_regenerated_reply_that_fails_before_any_text_keeps_the_old_one(make_app,
                                                                                 store):
    session = store.new_session("kept")
    store.add(session, "user", "Write a long story about a dragon who learns to fly.")
    store.add(session, "assistant", "The old reply, worth keeping.")
    app = make_app(session)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.chat.status.state == "ready")
        app.conversation.params = {"temperature": "hot"}  # the new attempt fails at once
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.chat.status.state == "error")
        assert any(n.message.startswith("E400") for n in app._notifications)
        kept = store.messages(session)
        assert [(m.role, m.content) for m in kept][-1] == (
            "assistant", "The old reply, worth keeping.")
        await wait_for(pilot, lambda: [v.text for v in views(app)][-1:] == [kept[-1].content])

        app.conversation.params = {"max_tokens": 6}
        await pilot.press("ctrl+r")  # this time it runs: the new reply takes the old one's place
        await wait_for(pilot, lambda: app.conversation.reply is None and
                       finished(views(app)[-1]))
        replies = [m for m in store.messages(session) if m.role == "assistant"]
        assert len(replies) == 1 and replies[0].content != "The old reply, worth keeping."
        assert len(views(app)) == 2


async def test_a_reply_cut_by_the_length_limit_is_marked_saved_so_and_continues(make_app, store):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.conversation.params = {"max_tokens": 12, "temperature": 0, "repeat_penalty": 1.0}
        await type_and_send(pilot, "Write a long story about a dragon who learns to fly.")
        await wait_for(pilot, lambda: len(views(app)) == 2 and views(app)[1].state == "stopped")
        reply = views(app)[1]
        assert app.chat.status.state == "stopped"
        note = str(reply.query_one(".note").render())
        assert note.startswith("stopped at the length limit — ctrl+r regenerate · ctrl+g")
        saved = store.messages(app.conversation.session_id)[-1]
        assert (saved.state, saved.error) == ("stopped", "stopped at the length limit")
        first = reply.text

        await pilot.press("ctrl+g")  # continue: the same reply grows
        await wait_for(pilot, lambda: app.conversation.reply is None
                       and len(views(app)[1].text) > len(first))
        assert views(app)[1].text.startswith(first) and len(views(app)) == 2


async def test_reply_keys_on_an_empty_chat_say_why_nothing_happens(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        for key in ("ctrl+r", "ctrl+g", "ctrl+b"):
            await pilot.press(key)
        await pilot.pause()
        notices = [n.message for n in app._notifications]
        assert any(n.startswith("No reply to regenerate") for n in notices)
        assert any(n.startswith("No stopped reply to continue") for n in notices)
        assert any(n.startswith("No reply to copy") for n in notices)
        assert views(app) == []


async def test_a_narrow_terminal_gives_the_prompt_the_room(make_app):
    app = make_app()
    async with app.run_test(size=(40, 12)) as pilot:
        await pilot.pause()
        prompt = app.chat.query_one(PromptInput)
        assert prompt.region.width >= 24
        await type_and_send(pilot, "Hi")
        assert views(app)[0].text == "Hi"


async def test_a_renamed_chat_stays_highlighted(make_app, store, tmp_path):
    older = store.new_session("older chat")
    store.add(older, "user", "older question")
    newer = store.new_session("newer chat")
    store.add(newer, "user", "newer question")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o")
        screen = app.screen
        assert isinstance(screen, SessionsScreen)
        screen.export_dir = tmp_path / "exports"
        listed = [s.id for s in store.sessions()]
        await pilot.press(*["down"] * listed.index(older))
        await pilot.press("r", *"renamed", "enter")
        assert store.title(older) == "renamed"
        await pilot.press("e")  # the next key acts on the renamed chat
        exported = (tmp_path / "exports" / f"breeze-chat-{older}.md").read_text()
        assert "older question" in exported
