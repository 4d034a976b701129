"""Bad input to every command, as a user types it: each ends with its code on stderr, a
non-zero exit and no traceback. One table a command; a new finding gets a new row."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .test_cli import BREEZE

NOT_UTF8 = b"caf\xe9 au lait"  # Latin-1, as an old terminal sends it

ASK = [
    (["-p", "temperature=NaN", "hi"], "E400"),
    (["-p", "temperature=Infinity", "hi"], "E400"),
    (["-p", "temperature=hot", "hi"], "E400"),
    (["-p", "max_tokens=-5", "hi"], "E400"),
    (["-p", "max_tokens=1.5", "hi"], "E400"),
    (["-p", "nosuch=1", "hi"], "E400"),
    (["-p", "no-equals-sign", "hi"], "E400"),
    (["--runner", "nosuch", "hi"], "E404"),
    (["--model", "{tmp}/missing.gguf", "hi"], "E501"),
    (["--model", "{tmp}/text.txt", "hi"], "E502"),
    (["--base-url", "ftp://example.org", "hi"], "E400"),
    (["-"], "E400"),  # stdin that is not UTF-8
]

SAY = [
    ([], "E400"),
    (["--out", "{tmp}", "Hello."], "E400"),  # a directory
    (["--out", "{tmp}/no/such/dir/x.wav", "Hello."], "E400"),
    (["--out", "{tmp}/x.wav", "--rate", "5", "Hello."], "E400"),
    (["--out", "{tmp}/x.wav", "--volume", "2", "Hello."], "E400"),
    (["--out", "{tmp}/x.wav", "--runner", "nosuch", "Hello."], "E404"),
    (["--out", "{tmp}/x.wav", "-"], "E400"),  # stdin that is not UTF-8
]

TRANSCRIBE = [
    (["{tmp}/missing.wav"], "E501"),
    (["{tmp}/empty.wav"], "E400"),
    (["{tmp}/text.txt"], "E400"),
    (["{tmp}"], "E400"),
]

GUARD = [
    (["-"], "E400"),  # stdin that is not UTF-8
]

MODELS = [
    (["pull", "nosuch"], "E404"),
    (["rm", "nosuch"], "E404"),
    (["path", "nosuch"], "E404"),
]

REMOTE = [
    (["add", "bad/name", "--base-url", "http://127.0.0.1:9/v1"], "E400"),
    (["add", "lab", "--base-url", "not-a-url"], "E400"),
    (["rm", "nosuch"], "E404"),
]

TALK = [
    (["-p", "nosuch=1"], "E400"),
    (["--runner", "nosuch"], "E404"),
    (["--model", "{tmp}/missing.gguf"], "E501"),
    (["--microphone", "no such microphone"], "E501"),
]

TABLE = [("ask", args, code) for args, code in ASK] + \
        [("say", args, code) for args, code in SAY] + \
        [("transcribe", args, code) for args, code in TRANSCRIBE] + \
        [("guard", args, code) for args, code in GUARD] + \
        [("models", args, code) for args, code in MODELS] + \
        [("remote", args, code) for args, code in REMOTE] + \
        [("talk", args, code) for args, code in TALK]


@pytest.fixture
def files(tmp_path) -> Path:
    (tmp_path / "text.txt").write_text("This is a note, not a model or a sound.\n" * 20)
    (tmp_path / "empty.wav").write_bytes(b"")
    return tmp_path


@pytest.mark.parametrize(("command", "args", "code"), TABLE,
                         ids=[f"{c} {' '.join(a)}" for c, a, _ in TABLE])
def test_bad_input_gets_its_code(command, args, code, files, env):
    argv = [BREEZE, command, *(a.format(tmp=files) for a in args)]
    done = subprocess.run(argv, input=NOT_UTF8, capture_output=True, env=env, timeout=120)
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode != 0
    assert stderr.startswith(f"{code}: "), stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    message = stderr.splitlines()[0].removeprefix(f"{code}: ")
    assert len(message) > 10 and not message.endswith(": "), "the message says what is wrong"


BROKEN_CONFIGS = [
    b"this is = = not toml",
    b"app = 5\n",
    b"runners = 'x'\n",
    b"[guardian]\nstrictness = 7\n",
    b"[app]\nllm_runner = 5\n",
    b"[voice]\nlanguage = \xff\n",
]


@pytest.mark.parametrize("content", BROKEN_CONFIGS)
def test_a_broken_config_file_is_named_and_the_command_still_works(content, env, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "config.toml").write_bytes(content)
    env["BREEZE_CONFIG_DIR"] = str(config)
    done = subprocess.run([BREEZE, "guard", "--json", "Hello there."], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    (warning,) = [line for line in done.stderr.splitlines() if line.startswith("breeze: ")]
    assert str(config / "config.toml") in warning


JSON_ERRORS = [
    ("ask", ["-p", "no-equals-sign", "hi"], "E400"),
    ("ask", ["-p", "nosuch=1", "hi"], "E400"),
    ("say", ["--out", "{tmp}", "Hello."], "E400"),
    ("transcribe", ["{tmp}/empty.wav"], "E400"),
    ("guard", ["-"], "E400"),
    ("dictate", ["--language", "zz-bad"], "E404"),
    ("talk", ["-p", "no-equals-sign"], "E400"),
    ("talk", ["--runner", "nosuch"], "E404"),
]


@pytest.mark.parametrize(("command", "args", "code"), JSON_ERRORS,
                         ids=[f"{c} {' '.join(a)}" for c, a, _ in JSON_ERRORS])
def test_with_json_an_error_is_a_json_line_too(command, args, code, files, env):
    argv = [BREEZE, command, "--json", *(a.format(tmp=files) for a in args)]
    done = subprocess.run(argv, input=NOT_UTF8, capture_output=True, env=env, timeout=120)
    assert done.returncode != 0
    assert done.stderr.decode().startswith(f"{code}: ")
    *_, last = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert last["partial"] is False and last["error"]["code"] == code
    assert last["error"]["message"] in done.stderr.decode()
