"""The presenter view: large captions of what Breeze hears and says, for a room. Snapshots at a
terminal's default size (80x24) and at the browser's (`breeze serve --present` at 1280x800:
textual-serve's font at 32 px gives 67x17)."""

from __future__ import annotations

import pytest

from breeze.tui.screens.presenter import PresenterScreen

from .conftest import wait_for

HEARD = "What is the capital of France, and what river runs through it?"
SAID = "The capital of France is Paris. The Seine runs through it, under many bridges."
SPEAKING = "The Seine runs through it, under many bridges."
LATENCY = ("end of turn 608 ms · transcript 1012 ms · first token 1390 ms · first sentence "
           "1655 ms · voice 1660 ms")


def _captions(presenter: PresenterScreen) -> None:
    presenter.heard, presenter.heard_final = HEARD, True
    presenter.said, presenter.speaking = SAID, SPEAKING
    presenter.latency, presenter.state = LATENCY, "talk · speaking"


@pytest.mark.parametrize("size", [(80, 24), (67, 17)], ids=["terminal", "browser"])
def test_presenter_view(snap_compare, make_app, size):
    app = make_app()

    async def run_before(pilot) -> None:
        await pilot.press("f5")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, PresenterScreen))
        _captions(pilot.app.screen)
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


async def test_a_typed_turn_is_captioned_and_f5_goes_back(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.chat.status.state == "ready", within=90)
        app.conversation.params = {"max_tokens": 24, "temperature": 0.0}
        await pilot.press("f5")
        presenter = app.chat.presenter
        assert app.screen is presenter
        await app.chat.send("What is the capital of France?")
        await wait_for(pilot, lambda: app.conversation.reply is None, within=60)
        assert presenter.heard == "What is the capital of France?" and presenter.heard_final
        reply = app.store.messages(app.conversation.session_id)[-1].content
        assert reply and presenter.said == reply
        shown = str(presenter.query_one("#present-said").render())
        assert " ".join(reply.split())[:40] in shown
        await pilot.press("f5")
        assert app.screen is app.chat
