import os
import stat

import pytest

from breeze.engine.config_file import (
    config_path,
    read_config,
    take_config_notices,
    update_config,
)
from breeze.tui.config import load_app_config


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("BREEZE_CONFIG_DIR", str(tmp_path))


def test_update_keeps_other_tables_and_is_private():
    update_config({"remote": {"lab": {"base_url": "http://127.0.0.1:1/v1", "api_key": "s3cret"}}})
    update_config({"runners": {"llama_cpp": {"temperature": 0.2, "stop": ["\n\n", "END"]}}})
    config = read_config()
    assert config["remote"]["lab"]["api_key"] == "s3cret"
    assert config["runners"]["llama_cpp"] == {"temperature": 0.2, "stop": ["\n\n", "END"]}
    assert stat.S_IMODE(os.stat(config_path()).st_mode) == 0o600


def test_round_trip_of_every_value_kind():
    table = {"a": {"s": 'quote " and ü', "i": 3, "f": 0.5, "b": True, "l": [1, "x"]},
             "odd key": {"n": 1}}
    update_config(table)
    assert read_config() == table


HAND_WRITTEN = """\
# Breeze settings, by hand
[app]
speak_replies = false  # quiet by default
llm_runner = "llama_cpp"

[runners.llama_cpp]
# low temperature for demos
temperature = 0.2
since = 2026-11-01

[remote.lab]
base_url = "http://127.0.0.1:1/v1"
"""


def test_a_save_keeps_comments_order_dates_and_other_tables():
    config_path().write_text(HAND_WRITTEN)
    update_config({"app": {"speak_replies": True, "llm_runner": "llama_cpp"},
                   "runners": {"llama_cpp": {"temperature": 0.2, "max_tokens": 64}}})
    text = config_path().read_text()
    assert text.startswith("# Breeze settings, by hand\n[app]\nspeak_replies = true  # quiet")
    assert "# low temperature for demos\ntemperature = 0.2\nmax_tokens = 64\n" in text
    assert "since" not in text, "a key the new table leaves out is removed"
    assert '[remote.lab]\nbase_url = "http://127.0.0.1:1/v1"' in text
    update_config({"runners": {"llama_cpp": {"temperature": 0.2, "since": _date()}}})
    assert read_config()["runners"]["llama_cpp"]["since"] == _date()


def _date():
    import datetime

    return datetime.date(2026, 11, 1)


@pytest.mark.parametrize("content", [b"this is = = not toml", b"[app]\nx = \xff\xfe\n", None])
def test_an_unreadable_file_is_moved_aside_once_and_the_defaults_apply(content):
    path = config_path()
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    assert read_config() == {}
    notices = take_config_notices()
    assert len(notices) == 1 and str(path) in notices[0]
    aside = [p for p in path.parent.iterdir() if p.name.startswith("config.toml.broken-")]
    assert len(aside) == 1 and str(aside[0]) in notices[0]
    if content is not None:
        assert aside[0].read_bytes() == content, "the user's file is kept as it was"
    assert read_config() == {} and take_config_notices() == []
    update_config({"app": {"speak_replies": True}})
    assert load_app_config().speak_replies is True


BAD_VALUES = [
    ("app = 5", "app"),
    ("runners = 'x'", "runners"),
    ("[app]\nllm_runner = 5", "[app] llm_runner"),
    ("[app]\nspeak_replies = 'yes'", "[app] speak_replies"),
    ("[guardian]\nstrictness = 7", "[guardian] strictness"),
    ("[guardian]\nstrictness = 'extreme'", "[guardian] strictness"),
    ("[guardian]\nenabled = 'no'", "[guardian] enabled"),
    ("[guardian]\ninput_checks = 5", "[guardian] input_checks"),
    ("[voice]\nauto_send_seconds = 99", "[voice] auto_send_seconds"),
    ("[voice]\nlanguage = true", "[voice] language"),
    ("[runners]\nllama_cpp = 3", "[runners] llama_cpp"),
]


@pytest.mark.parametrize(("text", "where"), BAD_VALUES)
def test_a_bad_value_is_reported_once_with_key_value_and_file_and_the_rest_applies(
        text, where):
    voice = "" if text.startswith("[voice]") else "\n[voice]"
    config_path().write_text(f"{text}{voice}\nspeaker = \"USB\"\n")
    config = load_app_config()
    assert len(config.problems) == 1, config.problems
    problem = config.problems[0]
    assert str(config_path()) in problem and f"{where} = " in problem and "ignored" in problem
    assert config.voice.speaker == "USB", "the rest of the file still applies"
