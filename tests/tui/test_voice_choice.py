"""The voice of spoken replies is chosen among the voices of every speech runner, each heard
in a preview through the (null) speaker first."""

from __future__ import annotations

import pytest
from textual.widgets import Button, Select, Static

from breeze.engine import Capability, Engine, InferenceRequest, Registry
from breeze.engine.config_file import read_config
from breeze.tui.screens.settings import SettingsScreen
from breeze.tui.screens.voice_fields import PREVIEW_TEXT
from tests.runners.test_audio_out import MonitorRecorder, tts_sink  # noqa: F401 (fixture)
from tests.runners.test_whisper_speech import loaded_whisper, normalize

from .conftest import wait_for

pytestmark = pytest.mark.usefixtures("tts_sink")
JOE = "piper:en_US-joe-medium"


def previews(app) -> list:
    return [w for w in app.workers if w.group == "voice-preview"]


async def press_preview(pilot):
    """Press Preview (scrolled out of view: no click); its worker, once started."""
    pilot.app.screen.query_one("#preview-voice", Button).press()
    await wait_for(pilot, lambda: previews(pilot.app))
    return previews(pilot.app)[0]


async def open_voices(pilot) -> Select:
    await pilot.press("f2")
    select = pilot.app.screen.query_one("#voice-reply-voice", Select)
    await wait_for(pilot, lambda: len(select._options) > 10)  # listed off the UI thread
    return select


async def preview(pilot) -> str:
    """Press Preview; what the speaker played, as Whisper heard it (pocketsphinx mishears
    some voices too often to tell one sentence from another)."""
    with MonitorRecorder() as recorder:
        worker = await press_preview(pilot)
        await wait_for(pilot, lambda: worker.is_finished, within=60)
        assert worker.error is None and not pilot.app._notifications, worker.error
        recorder.wait_quiet()
    request = InferenceRequest({"audio": recorder.samples().tobytes()}, {"stream_mode": "sentence"})
    final = await Engine(Registry([loaded_whisper()])).run(request)
    assert final.ok, final.error
    return final.text


def the_preview_in(heard: str) -> bool:
    """A third of the preview's words were heard (Whisper tiny mishears espeak-ng's voice
    now and then: "how green sound when the treatment will fly aloud")."""
    words = set(normalize(PREVIEW_TEXT))
    return len(words & set(normalize(heard))) >= len(words) / 3


async def test_voices_of_every_runner_are_listed_previewed_and_saved_with_their_runner(
        make_app):
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        select = await open_voices(pilot)
        labels = {value: str(label) for label, value in select._options}
        assert "pyttsx3:gmw/en-us" in labels and JOE in labels
        assert "Joe" in labels[JOE] and labels[JOE].endswith("· piper")
        select.value = JOE
        await pilot.pause()
        assert "piper" in str(app.screen.query_one("#voice-note", Static).render())
        heard = await preview(pilot)
        assert the_preview_in(heard), heard
        assert isinstance(app.screen, SettingsScreen), "the preview leaves the settings open"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        assert read_config()["runners"]["piper"] == {"voice": "en_US-joe-medium"}
        assert "voice" not in read_config()["runners"].get("pyttsx3", {})
        assert read_config()["voice"]["tts_runner"] == "piper"  # it speaks the replies now
        assert app.engine.settings.preferred_runners[Capability.TTS] == "piper"


async def test_a_preview_of_the_default_voice_and_closing_stops_it(make_app):
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await open_voices(pilot)
        assert "Hello" in PREVIEW_TEXT
        heard = await preview(pilot)
        assert the_preview_in(heard), heard
        worker = await press_preview(pilot)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        await wait_for(pilot, lambda: worker.is_cancelled and worker.is_finished)
