"""Voice in the app, through real devices: a PulseAudio null sink is both the speaker and,
through its monitor, the microphone (so Breeze would hear itself if the mic were not muted).
Speech to dictate comes from espeak-ng; replies are spoken by the real pyttsx3 runner."""

from __future__ import annotations

import re

import pytest
from textual.widgets import Input, Select

from breeze.engine import Capability, InferenceRequest, InferenceResult, RunnerError
from breeze.engine.config_file import read_config, update_config
from breeze.tui.config import AppConfig, VoiceConfig, load_app_config, save_app_config
from breeze.tui.screens.settings import SettingsScreen
from breeze.tui.voice import DictationText
from breeze.tui.widgets.level_meter import LevelMeter
from breeze.tui.widgets.message import MessageView
from breeze.tui.widgets.prompt import PromptInput
from breeze.tui.widgets.speech_bar import SpeechBar
from tests.runners.test_audio_in import no_recording_left, play, recording_streams, tone
from tests.runners.test_audio_out import MonitorRecorder, tts_sink  # noqa: F401 (fixture)
from tests.runners.test_pocketsphinx import KEYWORDS, english

from .conftest import played, wait_for

pytestmark = pytest.mark.usefixtures("tts_sink")
SINK = "breeze_tts"


def words_in(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


async def start(pilot) -> None:
    await wait_for(pilot, lambda: pilot.app.chat.status.state == "ready", within=90)


async def dictate(pilot) -> None:
    """Press the dictation key and wait until the microphone records."""
    await pilot.press("ctrl+t")
    await wait_for(pilot, lambda: recording_streams(SINK) > 0, within=90)


async def test_dictation_shows_the_partial_dimmed_and_finals_as_text(make_app, tmp_path):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await start(pilot)
        prompt = app.chat.query_one(PromptInput)
        prompt.insert("Hello.")
        await dictate(pilot)
        player = play(english(), tmp_path / "en.wav", SINK)
        partials, status_lines = [], []
        while player.poll() is None or prompt.suggestion:
            if prompt.suggestion:
                partials.append(prompt.suggestion)
            status_lines.append(str(app.chat.status.render()))
            await pilot.pause(0.05)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.chat.dictation is None)
        assert no_recording_left(SINK), "Esc must close the microphone"
        text = prompt.text
        assert text.startswith("Hello. ") and text[7:8].isupper(), text  # a new sentence
        assert len(words_in(text) & KEYWORDS) >= 4, text
        assert partials and not prompt.suggestion, "the partial shows, then becomes text"
        assert any(re.search(r"mic ▮+▯*", line) for line in status_lines), status_lines[-5:]
        assert all(line.startswith("● listening") for line in status_lines), status_lines[:3]
        assert "mic" not in str(app.chat.status.render()), "no level once the mic is closed"
        assert app.chat.status.state == "ready"
        await pilot.press("end", "ctrl+j", "t", "w", "o")  # the finals are ordinary text
        assert prompt.text == text + "\ntwo"


async def test_dictation_sends_itself_after_a_pause(make_app, tmp_path):
    config = AppConfig(voice=VoiceConfig(auto_send_seconds=1.5))
    save_app_config(config)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await start(pilot)
        app.conversation.params = {"max_tokens": 8}
        await dictate(pilot)
        await played(pilot, play(english(), tmp_path / "en.wav", SINK))
        await wait_for(pilot, lambda: app.conversation.session_id is not None, within=30)
        await wait_for(pilot, lambda: app.conversation.reply is None, within=60)
        sent = [m for m in app.store.messages(app.conversation.session_id) if m.role == "user"]
        assert len(sent) == 1 and len(words_in(sent[0].content) & KEYWORDS) >= 3, sent
        prompt = app.chat.query_one(PromptInput)
        assert prompt.text == ""
        assert app.chat.dictation is not None, "dictation goes on after sending"
        await pilot.press("w")  # typed, not dictated: never sent by a pause
        await pilot.pause(2.5)
        assert prompt.text == "w"
        assert len(app.store.messages(app.conversation.session_id)) == 2
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.chat.dictation is None)


async def test_replies_are_spoken_with_progress_and_the_sentence_heard(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await start(pilot)
        await pilot.press("ctrl+s")
        assert read_config()["app"]["speak_replies"] is True, "the toggle is saved"
        assert "speech on" in str(app.chat.status.render())
        app.conversation.params = {"temperature": 0, "max_tokens": 48}
        bar = app.chat.query_one(SpeechBar)
        with MonitorRecorder() as recorder:
            await app.chat.send("Name three colours. Then name three animals.")
            await wait_for(pilot, lambda: bar.sentence >= 0, within=90)
            view = list(app.chat.query(MessageView))[-1]
            progress, sentences, speaking, sources = [], [], [], []
            while bar.display:
                progress.append((bar.heard_ms, bar.percent))
                sentences.append(str(app.chat.query_one("#speech-sentence").render()))
                speaking.append(view.has_class("-speaking"))
                sources.append(view.body.source)
                await pilot.pause(0.1)
            recorder.wait_quiet()
        reply = app.store.messages(app.conversation.session_id)[-1]
        assert reply.content
        assert reply.state == "complete" or reply.error == "stopped at the length limit"
        assert recorder.spans(bridge_ms=600), "nothing was heard"
        assert progress[-1][0] > 1000 and progress[-1][1] >= 90, progress
        heard = {s.split(" ", 2)[-1].rstrip("…") for s in sentences if s.startswith("▶")}
        assert heard and all(part in reply.content for part in heard), (heard, reply.content)
        assert any(speaking) and not view.has_class("-speaking")
        bold = {m for source in sources for m in re.findall(r"\*\*(.+?)\*\*", source)}
        assert bold and all(b in reply.content for b in bold), (bold, reply.content)
        assert all(any(b[:20] in h for h in heard) for b in bold), (bold, heard)
        assert view.body.source == reply.content, "the highlight is gone afterwards"
        await pilot.pause(0.5)
        assert not app.voice.mute.is_set(), "the microphone is unmuted after speaking"


@pytest.mark.parametrize("tts_runner", ["pyttsx3", "piper"])
async def test_esc_silences_a_spoken_reply(make_app, tts_runner):
    save_app_config(AppConfig(speak_replies=True))
    app = make_app()
    app.engine.settings.preferred_runners = {Capability.TTS: tts_runner}
    async with app.run_test(size=(100, 30)) as pilot:
        await start(pilot)
        app.conversation.params = {"max_tokens": 400}
        await app.chat.send("Tell me a long story about a lighthouse keeper.")
        bar = app.chat.query_one(SpeechBar)
        await wait_for(pilot, lambda: bar.sentence >= 0, within=90)
        assert app.voice._player.pending_ms > 0
        await pilot.press("escape")
        assert app.voice._player.pending_ms == 0, "the queued sound was not dropped at once"
        await wait_for(pilot, lambda: app.chat.speech is None and not bar.display)
        await wait_for(pilot, lambda: app.conversation.reply is None)
        assert app.store.messages(app.conversation.session_id)[-1].state == "stopped"
        spoke = next(e for e in app.engine.registry.entries() if e.name == tts_runner)
        assert spoke.instantiated, f"{tts_runner} did not speak the reply"


async def test_turning_speech_off_mid_reply_keeps_the_reply(make_app):
    save_app_config(AppConfig(speak_replies=True))
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await start(pilot)
        app.conversation.params = {"temperature": 0, "max_tokens": 120}
        await app.chat.send("Tell me a story about a cat.")
        bar = app.chat.query_one(SpeechBar)
        await wait_for(pilot, lambda: bar.sentence >= 0, within=90)
        assert app.conversation.reply is not None, "the reply was over before the test began"
        await pilot.press("ctrl+s")
        assert app.voice._player.pending_ms == 0 and not load_app_config().speak_replies
        await wait_for(pilot, lambda: app.conversation.reply is None, within=90)
        reply = app.store.messages(app.conversation.session_id)[-1]
        assert reply.metadata["tokens_generated"] > 40, reply
        assert reply.state == "complete" or reply.error == "stopped at the length limit"
        await wait_for(pilot, lambda: not bar.display and not app.voice.mute.is_set())


async def test_quitting_while_dictating_and_speaking_closes_the_devices(make_app):
    save_app_config(AppConfig(speak_replies=True))
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await start(pilot)
        app.conversation.params = {"max_tokens": 300}
        await dictate(pilot)
        await app.chat.send("Tell me a long story about a ship.")
        await wait_for(pilot, lambda: app.chat.query_one(SpeechBar).sentence >= 0, within=90)
        player = app.voice._player
        await pilot.press("ctrl+q")
    assert no_recording_left(SINK), "the microphone was left open"
    assert player.pending_ms == 0 and app.voice._player is None


async def test_the_microphone_is_muted_while_breeze_speaks(make_app, tmp_path):
    """The speaker plays into the sink the microphone hears: without the mute, dictation
    would take down the reply. Afterwards the same microphone hears speech again."""
    save_app_config(AppConfig(speak_replies=True))
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await start(pilot)
        app.conversation.params = {"temperature": 0, "max_tokens": 40}
        prompt = app.chat.query_one(PromptInput)
        await dictate(pilot)
        await app.chat.send("Name three colours. Then name three animals.")
        muted = []
        await wait_for(pilot, lambda: app.chat.query_one(SpeechBar).display, within=90)
        while app.chat.speech is not None:
            muted.append(app.voice.mute.is_set())
            await pilot.pause(0.1)
        assert any(muted), "the microphone was never muted"
        await pilot.pause(1.5)
        assert prompt.text == "" and not prompt.suggestion, f"Breeze heard itself: {prompt.text}"
        await played(pilot, play(english(), tmp_path / "en.wav", SINK))
        await wait_for(pilot, lambda: len(words_in(prompt.text) & KEYWORDS) >= 3, within=30)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.chat.dictation is None)


async def test_dictation_without_a_microphone_is_an_error_with_its_code(make_app, monkeypatch):
    monkeypatch.setenv("PULSE_SOURCE", "no_such_source")
    save_app_config(AppConfig(voice=VoiceConfig(microphone="no-such-microphone")))
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: app.chat.dictation is None, within=90)
        await pilot.pause(0.2)
        shown = [n.message for n in app._notifications]
        assert any(m.startswith("dictation: E501") for m in shown), shown
        await app.chat.send("Still here?")  # the app goes on
        await wait_for(pilot, lambda: app.conversation.reply is None, within=90)


async def test_voice_settings_pick_devices_show_the_level_and_test_the_speaker(make_app,
                                                                               tmp_path):
    app = make_app()
    async with app.run_test(size=(110, 50)) as pilot:
        await start(pilot)
        await pilot.press("f2")
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        microphones = [value for _, value in screen.query_one("#voice-microphone")._options]
        assert "" in microphones and "pulse" in microphones
        meter = screen.query_one(LevelMeter)
        levels, shown = [], []
        player = play(tone(1.5), tmp_path / "tone.wav", SINK)
        while player.poll() is None:
            levels.append(meter.level)
            shown.append(str(meter.render()))
            await pilot.pause(0.05)
        known = [level for level in levels if level is not None]
        assert known and max(known) > -20, levels[-10:]  # the tone is at -9 dBFS
        assert any(re.fullmatch(r"▮{14,}▯* +-\d+ dBFS", line) for line in shown), shown

        with MonitorRecorder() as recorder:
            screen.query_one("#test-speaker").focus()  # which scrolls it into view
            await pilot.press("enter")
            recorder.wait_quiet()
        assert recorder.spans(bridge_ms=100), "the test tone was not heard"

        screen.query_one("#voice-microphone", Select).value = "pulse"
        screen.query_one("#voice-speaker", Select).value = "pulse"
        screen.query_one("#voice-language", Input).value = "ko"
        await refused_then_saved(pilot, "auto-send", "soon", "2.5")
    assert read_config()["voice"] == {"microphone": "pulse", "speaker": "pulse",
                                      "language": "ko", "asr_runner": "",
                                      "auto_send_seconds": 2.5, "tts_runner": "pyttsx3"}
    assert load_app_config().voice.language == "ko"


async def refused_then_saved(pilot, field: str, bad: str, good: str) -> None:
    """In the open settings: `bad` in the voice field is refused with E400 and nothing is
    saved; `good` saves them."""
    screen = pilot.app.screen
    screen.query_one(f"#voice-{field}", Input).value = bad
    await pilot.press("ctrl+s")
    assert isinstance(pilot.app.screen, SettingsScreen), f"an invalid {field} was saved"
    assert "E400" in str(screen.query_one(f"#error-voice-{field}").render())
    screen.query_one(f"#voice-{field}", Input).value = good
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: not isinstance(pilot.app.screen, SettingsScreen))


def test_a_bad_voice_table_keeps_the_defaults_of_its_bad_values(monkeypatch, tmp_path):
    monkeypatch.setenv("BREEZE_CONFIG_DIR", str(tmp_path))
    update_config({"voice": {"microphone": 3, "language": True, "auto_send_seconds": 99,
                             "speaker": "USB"}})
    config = load_app_config()
    assert config.voice == VoiceConfig(microphone="3", speaker="USB")
    assert len(config.problems) == 2
    assert "language" in config.problems[0] and "auto_send_seconds" in config.problems[1]


def _asr(text: str, *, final: bool = False, segments: list[str] | None = None,
         done: bool = False) -> InferenceResult:
    if done:
        meta = {"segments": [{"text": s} for s in segments or []], "finish_reason": "stop"}
        return InferenceResult.success({"text": " ".join(segments or [])}, meta)
    return InferenceResult.success({"text": text, "segment": text}, {"is_final": final},
                                   partial=True)


async def test_dictated_text_goes_where_the_cursor_is_and_never_twice(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        prompt = app.chat.query_one(PromptInput)
        prompt.insert("is nice")
        prompt.move_cursor((0, 0))
        prompt.add_final("the weather")
        prompt.show_partial("today")
        assert prompt.text_with_partial == "The weather today is nice"
        await pilot.press("right")  # moves the cursor; the partial stays a partial
        assert prompt.text == "The weather is nice" and prompt.suggestion
        await pilot.press("left")
        prompt.add_final("today")
        assert prompt.text == "The weather today is nice"
        prompt.show_partial("and warm")
        await pilot.press("end", "enter")  # sent as it looks, the partial included
        await wait_for(pilot, lambda: app.conversation.session_id is not None)
        sent = app.store.messages(app.conversation.session_id)[0].content
        assert sent == "The weather today is nice and warm" and prompt.text == ""


def test_dictation_text_hands_out_each_final_once():
    words = DictationText()
    assert words.update(_asr("turn on")) == [] and words.partial == "turn on"
    assert words.update(_asr("turn on the light", final=True)) == ["turn on the light"]
    assert words.partial == ""
    assert words.update(_asr("good")) == [] and words.partial == "good"
    # the stream ends: the utterance in progress is finalized in the terminal's segments
    done = _asr("", segments=["turn on the light", "good morning"], done=True)
    assert words.update(done) == ["good morning"] and words.partial == ""


def test_an_utterance_sent_as_a_partial_is_not_inserted_again():
    words = DictationText()
    words.update(_asr("what time"))
    words.skip_utterance()
    assert words.partial == ""
    assert words.update(_asr("what time is")) == [] and words.partial == ""
    assert words.update(_asr("what time is it", final=True)) == []
    assert words.update(_asr("close")) == [] and words.partial == "close"
    done = _asr("", segments=["what time is it", "close the door"], done=True)
    assert words.update(done) == ["close the door"]


def test_an_utterance_sent_that_ends_with_no_words_hides_no_other():
    words = DictationText()
    words.update(_asr("the"))  # a noise, heard as a word for a moment
    words.skip_utterance()
    assert words.update(_asr("")) == []  # finalized empty: no final comes, the partial empties
    assert words.update(_asr("book a")) == [] and words.partial == "book a"
    assert words.update(_asr("book a table for two", final=True)) == ["book a table for two"]


def test_words_heard_before_the_microphone_failed_are_kept():
    words = DictationText()
    assert words.update(_asr("turn on the")) == []
    failed = InferenceResult.failure(RunnerError.of("E501", "the microphone sends no audio"),
                                     {"text": "turn on the light"},
                                     {"segments": [{"text": "turn on the light"}]})
    assert words.update(failed) == ["turn on the light"] and words.partial == ""


async def test_the_voice_and_rate_of_spoken_replies_are_chosen_in_the_settings(make_app):
    update_config({"runners": {"pyttsx3": {"volume": 0.8}}})  # written by hand: kept
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("f2")
        screen = app.screen
        select = screen.query_one("#voice-reply-voice", Select)
        await wait_for(pilot, lambda: len(select._options) > 10)  # espeak-ng's voices, listed
        labels = dict((value, str(label)) for label, value in select._options)
        choice = next(value for value, label in labels.items() if "(de)" in label)
        select.value = choice
        german = choice.removeprefix("pyttsx3:")  # the voices of every runner are listed
        await refused_then_saved(pilot, "rate", "fast", "140")
        assert read_config()["runners"]["pyttsx3"] == {"volume": 0.8, "voice": german,
                                                       "rate": 140}
        spoken = await app.engine.run(
            InferenceRequest({"text": "Guten Tag."}, capability=Capability.TTS))
        assert spoken.ok and spoken.metadata["voice_used"] == german

        await pilot.press("f2")  # shown again as saved
        select = app.screen.query_one("#voice-reply-voice", Select)
        assert select.value == choice
        assert app.screen.query_one("#voice-rate", Input).value == "140"
