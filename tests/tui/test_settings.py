"""Settings from the runner's schema: validated, saved to the config file, applied."""

from __future__ import annotations

from textual.widgets import Input, Select, Static, Switch

from breeze.engine.config_file import read_config
from breeze.tui.screens.settings import SettingsScreen

from .conftest import wait_for


async def test_settings_validate_save_and_apply(make_app):
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_for(pilot, lambda: app.chat.status.state == "ready")
        await pilot.press("f2")
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        for name in ("temperature", "top_p", "top_k", "max_tokens", "stop", "n_ctx"):
            screen.query_one(f"#param-{name}", Input)  # one field per schema parameter
        screen.query_one("#param-temperature", Input).value = "hot"
        screen.query_one("#param-max_tokens", Input).value = "-5"
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, SettingsScreen), "invalid values must not be saved"
        assert "temperature" in str(screen.query_one("#error-temperature", Static).render())
        assert "max_tokens" in str(screen.query_one("#error-max_tokens", Static).render())
        assert "runners" not in read_config()

        screen.query_one("#param-temperature", Input).value = "0"
        screen.query_one("#param-max_tokens", Input).value = "7"
        screen.query_one("#param-stop", Input).value = "END, STOP"
        screen.query_one("#system_prompt", Input).value = "Answer briefly."
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        saved_guardian = read_config()["guardian"]
        assert saved_guardian["enabled"] is True and saved_guardian["output"] == "filter"
        saved = read_config()["runners"]["llama_cpp"]
        assert saved == {"temperature": 0.0, "max_tokens": 7, "stop": ["END", "STOP"],
                         "system_prompt": "Answer briefly."}
        assert app.engine.settings.runner_params["llama_cpp"]["max_tokens"] == 7

        await app.chat.send("Tell me a long story.")
        await wait_for(pilot, lambda: app.conversation.reply is None)
        reply = app.store.messages(app.conversation.session_id)[-1]
        assert reply.metadata["tokens_generated"] <= 7


async def test_saved_settings_are_loaded_at_start(make_app):
    from breeze.tui.config import AppConfig, save_app_config

    save_app_config(AppConfig("llama_cpp", {"llama_cpp": {"max_tokens": 3}}))
    app = make_app()
    assert app.config.runner_params == {"llama_cpp": {"max_tokens": 3}}


async def test_guardian_section_saves_and_applies(make_app):
    from textual.widgets import Select, Switch

    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("f2")
        screen = app.screen
        screen.query_one("#guardian-strictness", Select).value = "high"
        screen.query_one("#guardian-output", Select).value = "warn"
        screen.query_one("#guardian-enabled", Switch).value = True
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        table = read_config()["guardian"]
        assert table["strictness"] == "high" and table["output"] == "warn"
        assert app.engine.settings.guard is not None
        await pilot.press("f2")
        app.screen.query_one("#guardian-enabled", Switch).value = False
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
        assert read_config()["guardian"]["enabled"] is False
        assert app.engine.settings.guard is None


async def test_saving_keeps_what_the_form_does_not_show_and_lists_with_commas(make_app):
    from breeze.tui.config import AppConfig, save_app_config

    save_app_config(AppConfig("llama_cpp", {"llama_cpp": {
        "stream_mode": "sentence", "stop": ["\n\n", "a, b"], "max_tokens": 9}}))
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("f2")
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        depth = len(app.screen_stack)
        await pilot.press("f2")  # the app's keys do not open a second settings screen
        assert app.screen is screen and len(app.screen_stack) == depth
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
    assert read_config()["runners"]["llama_cpp"] == {
        "stream_mode": "sentence", "stop": ["\n\n", "a, b"], "max_tokens": 9}


async def test_the_speech_toggle_keeps_what_was_written_to_the_file_meanwhile(make_app):
    from breeze.engine.config_file import update_config

    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        update_config({"runners": {"llama_cpp": {"max_tokens": 5}}})  # by hand, while it runs
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        config = read_config()
        assert config["app"]["speak_replies"] is True
        assert config["runners"] == {"llama_cpp": {"max_tokens": 5}}
        await pilot.press("ctrl+s")


async def test_a_settings_file_that_cannot_be_written_is_reported(make_app, tmp_path,
                                                                  monkeypatch):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the config directory should be")
    monkeypatch.setenv("BREEZE_CONFIG_DIR", str(blocked / "config"))
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        assert app.is_running
        notices = [n.message for n in app._notifications]
        assert any(n.startswith("E501") and "cannot write the settings" in n for n in notices)


async def test_changing_the_runner_keeps_what_was_typed_in_the_other_sections(make_app):
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("f2")
        screen = app.screen
        screen.query_one("#voice-speak", Switch).value = True
        screen.query_one("#guardian-enabled", Switch).value = False
        screen.query_one("#voice-language", Input).value = "de"
        screen.query_one("#runner", Select).value = "openai"
        await wait_for(pilot, lambda: not screen.query("#param-n_ctx"))  # llama.cpp's, gone
        assert screen.query_one("#voice-speak", Switch).value is True
        assert screen.query_one("#guardian-enabled", Switch).value is False
        assert screen.query_one("#voice-language", Input).value == "de"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
    config = read_config()
    assert config["app"]["llm_runner"] == "openai" and config["app"]["speak_replies"] is True
    assert config["guardian"]["enabled"] is False and config["voice"]["language"] == "de"


async def test_a_save_from_the_settings_keeps_the_users_comments(make_app):
    from breeze.engine.config_file import config_path

    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# my Breeze setup\n[runners.llama_cpp]\n"
                    "temperature = 0.5  # warm, for stories\n\n"
                    "[remote.lab]  # the box under the desk\nbase_url = \"http://127.0.0.1:9/v1\"\n")
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("f2")
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        screen.query_one("#param-max_tokens", Input).value = "64"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
    text = path.read_text()
    assert text.startswith("# my Breeze setup\n")
    assert "temperature = 0.5  # warm, for stories\n" in text
    assert "[remote.lab]  # the box under the desk\n" in text
    assert read_config()["runners"]["llama_cpp"]["max_tokens"] == 64


async def test_a_bad_value_in_the_file_is_shown_once_at_start(make_app):
    from breeze.engine.config_file import config_path

    config_path().parent.mkdir(parents=True, exist_ok=True)
    config_path().write_text("[app]\nspeak_replies = 'yes'\n[voice]\nspeaker = \"USB\"\n")
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_for(pilot, lambda: bool(app._notifications))
        notices = [n.message for n in app._notifications if "speak_replies" in n.message]
        assert len(notices) == 1 and str(config_path()) in notices[0]
        assert app.config.voice.speaker == "USB"


async def test_the_model_field_takes_a_catalog_id_or_a_gguf_path(make_app, tmp_path):
    from breeze.engine.models import resolve

    gguf = tmp_path / "my model.gguf"
    gguf.symlink_to(resolve(None))
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("f2")
        screen = app.screen
        field = screen.query_one("#model", Input)
        for bad, code in (("no-such-model", "E404"), (str(tmp_path / "x.gguf"), "E501"),
                          (str(tmp_path), "E400")):
            field.value = bad
            await pilot.press("ctrl+s")
            assert isinstance(app.screen, SettingsScreen), f"{bad!r} was saved"
            assert str(screen.query_one("#error-model", Static).render()).startswith(code)
        field.value = str(gguf)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen))
    assert read_config()["runners"]["llama_cpp"]["model"] == str(gguf)
