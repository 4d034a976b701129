"""The command palette (ctrl+p) offers every action that has a key, once each."""

from __future__ import annotations

from textual.screen import Screen

from breeze.tui.screens.chat import ChatScreen
from breeze.tui.screens.sessions import SessionsScreen
from breeze.tui.screens.settings import SettingsScreen

from .conftest import wait_for


async def test_every_action_with_a_key_is_in_the_palette_once(make_app):
    app = make_app()
    async with app.run_test(size=(100, 40)):
        commands = list(app.get_system_commands(app.chat))
        titles = [command.title for command in commands]
        assert len(titles) == len(set(titles)), f"two commands share a title: {titles}"
        callbacks = [command.callback for command in commands]
        bound = [(app, b.action) for b in app.BINDINGS] + [(app.chat, b.action)
                                                             for b in ChatScreen.BINDINGS]
        for owner, action in bound:
            method = getattr(owner, f"action_{action}")
            assert method in callbacks, f"{action} has a key but no palette entry"


async def run_command(pilot, title: str) -> None:
    """Open the palette, type the command's title and run it, as a user would."""
    await pilot.press("ctrl+p")
    await pilot.pause(0.3)
    await pilot.press(*title)
    await pilot.pause(0.5)
    await pilot.press("enter")


async def test_a_palette_command_runs_its_action(make_app, store):
    store.new_session("A saved chat")
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await run_command(pilot, "Saved chats")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionsScreen), 10)


async def test_the_palette_opens_no_second_dialog_over_one(make_app):
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        for _ in range(2):  # from the chat, then over the settings it opened
            await run_command(pilot, "Settings")
            await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen), 10)
            await pilot.pause(0.3)
        assert [type(s) for s in app.screen_stack] == [Screen, ChatScreen, SettingsScreen]
