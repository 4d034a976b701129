"""`breeze ask --runner openai` and `breeze remote` against a real llama.cpp server."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.runners.conftest import API_KEY, MODEL, LlamaServer, free_port, shared_server

from .test_cli import BREEZE, breeze, json_lines

SAY_HI = ["-p", "max_tokens=12", "-p", "temperature=0"]


@pytest.fixture(scope="module")
def server() -> LlamaServer:
    return shared_server()


@pytest.fixture
def env(env, tmp_path):
    env = {k: v for k, v in env.items() if not k.startswith(("OPENAI_", "BREEZE_"))}
    env["BREEZE_CONFIG_DIR"] = str(tmp_path / "config")
    env["BREEZE_LOG_DIR"] = str(tmp_path / "logs")
    env["BREEZE_TEST_KEY"] = API_KEY
    return env




def assert_key_hidden(out: subprocess.CompletedProcess, env: dict) -> None:
    logs = "".join(p.read_text() for p in Path(env["BREEZE_LOG_DIR"]).glob("*.log*"))
    assert API_KEY not in out.stdout + out.stderr + logs


def test_ask_streams_from_a_server_given_by_params(server, env):
    out = breeze("ask", "Say hello.", "--runner", "openai", "--model", MODEL, "--json",
                 "-p", f"base_url={server.url}", "-p", "api_key_env=BREEZE_TEST_KEY", *SAY_HI,
                 env=env)
    assert out.returncode == 0, out.stderr
    rows = json_lines(out.stdout)
    assert len(rows) >= 2 and all(r["partial"] for r in rows[:-1])
    final = rows[-1]
    assert final["outputs"]["text"] and final["error"] is None
    assert final["metadata"]["runner_name"] == "openai"
    assert final["metadata"]["model_name"] == MODEL
    assert final["metadata"]["finish_reason"] in ("stop", "length")
    assert_key_hidden(out, env)


@pytest.mark.parametrize("how", ["--base-url", "--profile"])
def test_ask_with_remote_flags(server, env, how):
    """Needs the --base-url / --api-key-env / --profile options of `breeze ask`."""
    if how == "--profile":
        added = breeze("remote", "add", "lab", "--base-url", server.url, "--model", MODEL,
                       "--api-key-env", "BREEZE_TEST_KEY", env=env)
        assert added.returncode == 0, added.stderr
        args = ["--profile", "lab"]
    else:
        args = ["--base-url", server.url, "--model", MODEL, "--api-key-env", "BREEZE_TEST_KEY"]
    out = breeze("ask", "Say hello.", "--runner", "openai", *args, *SAY_HI, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
    assert_key_hidden(out, env)


def test_profiles_add_list_use_and_remove(server, env):
    added = breeze("remote", "add", "local", "--base-url", server.url, "--model", MODEL,
                   "--api-key-stdin", "--max-retries", "1", "--default", env=env,
                   input=API_KEY + "\n")
    assert added.returncode == 0, added.stderr
    config = Path(env["BREEZE_CONFIG_DIR"]) / "config.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    listed = breeze("remote", "list", "--json", env=env)
    assert json_lines(listed.stdout) == [{
        "name": "local", "base_url": server.url, "model": MODEL, "api_key": "stored",
        "timeout_s": None, "max_retries": 1, "default": True,
    }]
    assert_key_hidden(listed, env)
    answer = breeze("ask", "Say hello.", "--runner", "openai", *SAY_HI, env=env)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip()
    assert_key_hidden(answer, env)
    assert breeze("remote", "rm", "local", env=env).returncode == 0
    assert breeze("remote", "list", "--json", env=env).stdout == ""
    gone = breeze("remote", "rm", "local", env=env)
    assert gone.returncode != 0 and gone.stderr.startswith("E404: ")


def test_unreachable_server_is_e102_and_a_nonzero_exit(env):
    url = f"http://127.0.0.1:{free_port()}/v1"
    out = breeze("ask", "hi", "--runner", "openai", "--model", MODEL, "-p", f"base_url={url}",
                 env=env)
    assert out.returncode != 0
    assert out.stderr.startswith("E102: connection to"), out.stderr
    assert out.stderr.rstrip().endswith("(after 3 retries)"), out.stderr


def test_a_profiles_max_retries_is_used(env):
    """Needs `breeze ask` to build its engine with `retry_policy(profile)`."""
    url = f"http://127.0.0.1:{free_port()}/v1"
    added = breeze("remote", "add", "down", "--base-url", url, "--model", MODEL,
                   "--max-retries", "1", "--default", env=env)
    assert added.returncode == 0, added.stderr
    out = breeze("ask", "hi", "--runner", "openai", env=env)
    assert out.returncode != 0
    assert out.stderr.startswith("E102: "), out.stderr
    assert out.stderr.rstrip().endswith("(after 1 retries)"), out.stderr


def test_no_server_configured_is_e501(env):
    out = breeze("ask", "hi", "--runner", "openai", env=env)
    assert out.returncode != 0 and out.stderr.startswith("E501: ")


def test_ctrl_c_closes_the_remote_stream(server, env):
    disconnects = server.log_text().count("Disconnected from client")
    proc = subprocess.Popen(
        [BREEZE, "ask", "Write a long essay about the sea.", "--json", "--runner", "openai",
         "--model", MODEL, "-p", f"base_url={server.url}", "-p", "api_key_env=BREEZE_TEST_KEY",
         "-p", "max_tokens=1900", "-p", "temperature=0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if json.loads(line)["outputs"].get("text"):
            proc.send_signal(signal.SIGINT)
            break
    rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert json_lines(rest)[-1]["metadata"]["finish_reason"] == "cancelled"
    for _ in range(100):  # the server logs the closed stream when it notices it
        if server.log_text().count("Disconnected from client") > disconnects:
            return
        time.sleep(0.05)
    raise AssertionError("the server did not notice the closed stream")


def test_credentials_in_a_profiles_url_are_never_listed(env):
    secret = "sk-in-the-url-42"
    url = f"http://ada:{secret}@127.0.0.1:{free_port()}/v1"
    added = breeze("remote", "add", "lab", "--base-url", url, "--max-retries", "0", env=env)
    assert added.returncode == 0, added.stderr
    for args in (["remote", "list", "--json"], ["remote", "list"]):
        listed = breeze(*args, env=env)
        assert listed.returncode == 0, listed.stderr
        assert secret not in listed.stdout and "ada:***@127.0.0.1" in listed.stdout
    failed = breeze("ask", "hi", "--runner", "openai", "--profile", "lab", "-p",
                    "max_tokens=2", env={**env, "BREEZE_LOG_LEVEL": "DEBUG"})
    assert failed.returncode != 0 and secret not in failed.stderr
    logs = "".join(p.read_text() for p in Path(env["BREEZE_LOG_DIR"]).glob("*.log*"))
    assert "127.0.0.1" in logs and secret not in logs
