"""Search over every chat: the index kept in step with the messages as they stream, are edited
and deleted; the saved-chats screen finds a chat and opens it at the message; dictated and
spoken turns are marked."""

from __future__ import annotations

import sqlite3

import pytest
from textual.widgets import Input, OptionList

from breeze.engine import BreezeError
from breeze.tui.config import AppConfig, VoiceConfig, save_app_config
from breeze.tui.screens.sessions import SessionsScreen
from breeze.tui.store import Store, plain_query
from breeze.tui.widgets.message import MessageView
from tests.runners.test_audio_in import play
from tests.runners.test_audio_out import tts_sink  # noqa: F401 (fixture)
from tests.runners.test_pocketsphinx import english

from .conftest import played, wait_for


def found(store: Store, query: str) -> list[int]:
    return [hit.message_id for hit in store.search(query)]


def index_is_sound(store: Store) -> None:
    """FTS5's own check: every row indexed as it now reads, and nothing else."""
    with sqlite3.connect(store.path) as db:
        db.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)")
    db.close()


def test_a_reply_is_found_while_it_streams_and_as_it_ends(store):
    session = store.new_session()
    store.add(session, "user", "Tell me about volcanoes")
    reply = store.add(session, "assistant", "", "streaming")
    store.update(reply, "Krakatoa erupted", "streaming")
    assert found(store, "krakatoa") == [reply]
    store.update(reply, "Vesuvius buried Pompeii", "complete")
    assert found(store, "krakatoa") == [] and found(store, "pompeii") == [reply]
    index_is_sound(store)


def test_deleted_messages_and_chats_leave_the_index(store):
    session = store.new_session()
    kept = store.add(session, "user", "an aardvark digs")
    gone = store.add(session, "assistant", "an aardvark eats ants")
    store.remove_message(gone)
    assert found(store, "aardvark") == [kept]
    store.delete(session)
    assert found(store, "aardvark") == []
    index_is_sound(store)


def test_the_search_reads_as_a_person_types(store):
    session = store.new_session("Café talk")
    message = store.add(session, "user", "Où est le café? Ich möchte Kaffee.")
    assert found(store, "cafe") == [message], "accents do not matter"
    assert found(store, plain_query("mö")) == [message], "the last word may be half typed"
    assert found(store, plain_query("what? caf")) == [], "every word must match"
    assert found(store, plain_query('"le" ? café')) == [message], "no syntax to get wrong"
    [hit] = store.search("kaffee")
    assert (hit.session_id, hit.title, hit.role) == (session, "Café talk", "user")
    assert hit.snippet == "Où est le café? Ich möchte [Kaffee]."


@pytest.mark.parametrize("query", ['"open', "what?", "NOT", "nosuch:column"])
def test_a_bad_query_is_an_e400(store, query):
    store.add(store.new_session(), "user", "hello")
    with pytest.raises(BreezeError) as caught:
        store.search(query)
    assert caught.value.error.code == "E400"
    assert caught.value.error.message.startswith(f"cannot search for {query!r}: ")


def test_a_database_from_before_the_index_is_indexed_when_opened(tmp_path):
    path = tmp_path / "sessions.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript("""
            CREATE TABLE sessions (id INTEGER PRIMARY KEY, title TEXT NOT NULL,
                                   created REAL NOT NULL, updated REAL NOT NULL);
            CREATE TABLE messages (id INTEGER PRIMARY KEY, session_id INTEGER NOT NULL
                REFERENCES sessions(id) ON DELETE CASCADE, role TEXT NOT NULL,
                content TEXT NOT NULL, state TEXT NOT NULL, error TEXT, metadata TEXT,
                created REAL NOT NULL);
            INSERT INTO sessions VALUES (1, 'Old', 1, 1);
            INSERT INTO messages(session_id, role, content, state, created)
                VALUES (1, 'user', 'an old platypus', 'complete', 1);
        """)
    db.close()
    store = Store(path)
    try:
        assert store.problems == []
        assert found(store, "platypus") == [1]
        assert store.messages(1)[0].voice is None
        store.add(1, "assistant", "platypus facts")
        assert len(found(store, "platypus")) == 2
        index_is_sound(store)
    finally:
        store.close()
    store = Store(path)  # opened again: indexed once, not twice
    try:
        assert len(found(store, "platypus")) == 2
        index_is_sound(store)
    finally:
        store.close()


def test_voice_marks_are_kept_and_exported(store):
    session = store.new_session("By voice")
    asked = store.add(session, "user", "what time is it", voice="dictated")
    reply = store.add(session, "assistant", "It is noon.")
    store.mark_voice(reply, "spoken")
    assert [m.voice for m in store.messages(session)] == ["dictated", "spoken"]
    hits = store.search("time OR noon")
    assert {h.message_id: h.voice for h in hits} == {asked: "dictated", reply: "spoken"}
    export = store.export_markdown(session)
    assert "## User (dictated)\n\nwhat time is it" in export
    assert "## Assistant (spoken)\n\nIt is noon." in export


def fill(store: Store) -> tuple[int, int]:
    """An old chat with a rare word far up in it, and a newer chat: (old chat, message)."""
    old = store.new_session("Travel")
    store.add(old, "user", "Where are the spice islands?")
    target = store.add(old, "assistant", "Zanzibar is an archipelago off Tanzania.")
    for n in range(12):
        store.add(old, "user", f"Question {n} about something else entirely")
        store.add(old, "assistant", f"Answer {n}, a paragraph long enough to take some room.")
    newer = store.new_session("Cooking")
    store.add(newer, "user", "How long to boil an egg?")
    return old, target


def shown_in_the_chat(app, message_id: int) -> bool:
    view = app.focused
    if not isinstance(view, MessageView) or view.message_id != message_id:
        return False
    log = app.chat.query_one("#messages")
    return log.region.contains_region(view.region) or (
        view.region.y >= log.region.y and view.region.y < log.region.bottom)


async def test_the_saved_chats_search_opens_a_chat_at_the_message(make_app, store):
    old, target = fill(store)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+o")
        screen = app.screen
        assert isinstance(screen, SessionsScreen)
        options = screen.query_one(OptionList)
        assert options.option_count == 2
        await pilot.press("slash", *"zanzib")
        assert screen.query_one("#search", Input).value == "zanzib"
        assert options.option_count == 1
        prompt = str(options.get_option_at_index(0).prompt)
        assert prompt.startswith("Travel  (") and "Breeze: " in prompt
        assert "Zanzibar is an archipelago off Tanzania." in prompt
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, SessionsScreen))
        assert app.conversation.session_id == old
        await wait_for(pilot, lambda: shown_in_the_chat(app, target))
        log = app.chat.query_one("#messages")
        assert log.scroll_y < log.max_scroll_y, "the chat is not at its end: at the message"


async def test_a_hit_in_the_open_chat_scrolls_to_it(make_app, store):
    old, target = fill(store)
    app = make_app(session_id=old)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+o", "slash", *"archipelago", "down", "enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, SessionsScreen))
        await wait_for(pilot, lambda: shown_in_the_chat(app, target))


async def test_the_search_field_shows_when_nothing_matches_and_clears(make_app, store):
    fill(store)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+o", "slash", *"qwxz")
        screen = app.screen
        options = screen.query_one(OptionList)
        assert options.option_count == 1 and options.get_option_at_index(0).disabled
        await pilot.press("enter")
        assert app.screen is screen, "enter with nothing found opens nothing"
        await pilot.press(*["backspace"] * 4)
        assert options.option_count == 2
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, SessionsScreen))
        assert app.conversation.session_id is None


@pytest.mark.slow
@pytest.mark.usefixtures("tts_sink")
async def test_a_dictated_prompt_and_its_spoken_reply_are_marked(make_app, store, tmp_path):
    """Through real devices (see test_voice): speech played into the microphone is dictated
    and sent by a pause; the reply is spoken."""
    save_app_config(AppConfig(speak_replies=True, voice=VoiceConfig(auto_send_seconds=1.5)))
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.chat.status.state == "ready", within=90)
        app.conversation.params = {"max_tokens": 16}
        await pilot.press("ctrl+t")
        await played(pilot, play(english(), tmp_path / "en.wav", "breeze_tts"))
        await wait_for(pilot, lambda: app.conversation.session_id is not None, within=30)
        await wait_for(pilot, lambda: app.conversation.reply is None and app.chat.speech is None,
                       within=90)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.chat.dictation is None)
        await pilot.press("t", "y", "p", "e", "d", "enter")  # typed: no mark
        await wait_for(pilot, lambda: len(app.conversation.messages()) == 4, within=30)
        await wait_for(pilot, lambda: app.conversation.reply is None and app.chat.speech is None,
                       within=90)
    messages = store.messages(app.conversation.session_id)
    assert [(m.role, m.voice) for m in messages] == [
        ("user", "dictated"), ("assistant", "spoken"), ("user", None), ("assistant", "spoken")]
    [hit] = store.search("typed")
    assert hit.voice is None
    assert any(h.voice == "dictated" for h in store.search(plain_query(messages[0].content)))
