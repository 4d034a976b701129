"""The installed `breeze` command, run as a user runs it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

BREEZE = str(Path(sys.executable).with_name("breeze"))



def breeze(*args: str, env, input: str | None = None, timeout: float = 120):
    return subprocess.run(
        [BREEZE, *args], capture_output=True, text=True, env=env, input=input, timeout=timeout
    )


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_version(env):
    out = breeze("--version", env=env)
    assert out.returncode == 0 and out.stdout.startswith("breeze ")


def test_runners_json(env):
    out = breeze("runners", "--json", env=env)
    assert out.returncode == 0, out.stderr
    rows = json_lines(out.stdout)
    assert {r["name"] for r in rows} >= {"llama_cpp"}
    for row in rows:
        assert {"name", "capabilities", "priority", "available", "reason"} <= set(row)
    assert next(r for r in rows if r["name"] == "llama_cpp")["available"] is True


def test_ask_streams_an_answer_with_no_network(env):
    out = breeze("ask", "What is the capital of France?", "-p", "temperature=0",
                 "-p", "max_tokens=40", env=env)
    assert out.returncode == 0, out.stderr
    assert "Paris" in out.stdout
    assert out.stderr == ""  # nothing from llama.cpp reaches the terminal


def test_ask_json_lines(env):
    out = breeze("ask", "Count from one to twenty.", "--json", "-p", "max_tokens=60",
                 "-p", "temperature=0", env=env)
    assert out.returncode == 0, out.stderr
    rows = json_lines(out.stdout)
    assert len(rows) > 1
    assert all(r["partial"] for r in rows[:-1]) and rows[-1]["partial"] is False
    for row in rows:
        assert set(row) == {"request_id", "partial", "outputs", "metadata", "error"}
    assert rows[-1]["metadata"]["finish_reason"] in ("stop", "length")
    assert rows[-1]["outputs"]["text"]


def test_ask_reads_stdin_and_no_stream(env):
    out = breeze("ask", "-", "--no-stream", "--system", "Answer in one word.",
                 "-p", "max_tokens=8", env=env, input="What colour is the sky?")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--model", "/nonexistent/model.gguf"], "E501"),
        (["-p", "temperature=hot"], "E400"),
        (["-p", "nonsense"], "E400"),
        (["--runner", "nope"], "E404"),
    ],
)
def test_ask_errors_exit_nonzero_with_the_code(env, args, code):
    out = breeze("ask", "hi", *args, env=env)
    assert out.returncode != 0
    assert out.stderr.startswith(f"{code}: "), out.stderr


def test_corrupt_model_prints_only_the_error(env, tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    out = breeze("ask", "hi", "--model", str(bad), env=env)
    assert out.returncode == 1
    assert out.stderr.splitlines() == [out.stderr.splitlines()[0]]
    assert out.stderr.startswith("E502: ")


def test_ctrl_c_cancels_and_prints_the_terminal_result(env):
    proc = subprocess.Popen(
        [BREEZE, "ask", "Write a very long story about the sea.", "--json",
         "-p", "max_tokens=3000", "-p", "repeat_penalty=1.0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(json.loads(line))
        if lines[-1]["outputs"].get("text"):
            proc.send_signal(signal.SIGINT)
            break
    rest, _ = proc.communicate(timeout=30)
    lines += json_lines(rest)
    assert proc.returncode == 130
    assert lines[-1]["partial"] is False
    assert lines[-1]["metadata"]["finish_reason"] == "cancelled"
    assert lines[-1]["metadata"]["tokens_generated"] < 3000


def test_doctor_reports_each_check(env):
    out = breeze("doctor", "--json", env=env)
    rows = json_lines(out.stdout)
    names = {r["name"] for r in rows}
    assert any("PortAudio" in n for n in names) and any("espeak" in n for n in names)
    assert all(r["ok"] or r["fix"] for r in rows), "every problem comes with its fix"
    assert out.returncode == (0 if all(r["ok"] for r in rows) else 1)
    speech = next(r for r in rows if r["name"] == "speech recognition (en)")
    assert speech["ok"] and speech["detail"] == "whisper with whisper-tiny-en"


def test_doctor_says_when_the_dictation_language_has_no_model(env):
    config = Path(env["XDG_CONFIG_HOME"]) / "breeze"
    config.mkdir(parents=True)
    (config / "config.toml").write_text('[voice]\nlanguage = "de"\n')
    out = breeze("doctor", "--json", env=env)
    speech = next(r for r in json_lines(out.stdout) if r["name"] == "speech recognition (de)")
    assert not speech["ok"] and out.returncode == 1
    assert "breeze models pull vosk-model-small-de-0.15" in speech["detail"]


def test_ask_blocks_an_offensive_prompt_before_the_model_runs(env):
    out = breeze("ask", "You are a fucking idiot.", env=env)
    assert out.returncode == 1
    assert out.stderr.startswith("G100: blocked by the guardian: offensive language"), out.stderr
    assert out.stdout == ""


def test_guardian_can_be_turned_off_in_the_config(env, tmp_path):
    config = Path(env["XDG_CONFIG_HOME"]) / "breeze"
    config.mkdir(parents=True)
    (config / "config.toml").write_text("[guardian]\nenabled = false\n")
    out = breeze("ask", "You are a fucking idiot.", "-p", "max_tokens=5", env=env)
    assert out.returncode == 0, out.stderr


def test_models_list_piped_shows_every_id_whole(env):
    from breeze.engine.models import load_catalog

    out = breeze("models", "list", env=env)
    assert out.returncode == 0, out.stderr
    for entry in load_catalog():
        assert entry.id in out.stdout, f"{entry.id} is cut in:\n{out.stdout}"
