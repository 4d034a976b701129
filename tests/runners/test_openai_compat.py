"""The OpenAI-compatible runner against a real llama.cpp server on 127.0.0.1 (conftest.py),
directly or through a proxy that injects failures."""

from __future__ import annotations

import asyncio
import base64
import logging
import stat
import time
import tomllib
from http.server import BaseHTTPRequestHandler

import openai
import pytest

from breeze.engine import (
    BreezeError,
    Capability,
    Engine,
    EngineSettings,
    InferenceRequest,
    Registry,
    RetryPolicy,
)
from breeze.runners._remote_config import (
    RemoteProfile,
    load_profiles,
    redact_url,
    remote_params,
    remove_profile,
    resolve_endpoint,
    retry_policy,
    save_profile,
)
from breeze.runners.openai_compat import OpenAIRunner

from .conftest import API_KEY, MODEL, FaultProxy, LlamaServer, free_port

FAST = RetryPolicy(max_retries=2, base_delay_s=0.01)
LONG = "Write a long essay about the sea."  # greedy SmolLM2 goes on for 1900 tokens
# A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def make_engine(runner: OpenAIRunner, retry: RetryPolicy = FAST) -> Engine:
    return Engine(Registry([runner]), EngineSettings(emit_interval_ms=0, retry=retry))


@pytest.fixture
def engine(llama_server: LlamaServer) -> Engine:
    return make_engine(OpenAIRunner(llama_server.profile()))


def proxied(proxy: FaultProxy, llama_server: LlamaServer, retry: RetryPolicy = FAST,
            **profile: object) -> Engine:
    return make_engine(OpenAIRunner(llama_server.profile(base_url=proxy.url, **profile)), retry)


def ask(text: str, **params: object) -> InferenceRequest:
    return InferenceRequest({"text": text}, {"temperature": 0.0, **params})


async def collect(engine: Engine, request: InferenceRequest) -> list:
    return [r async for r in engine.submit(request)]


async def test_streams_tokens_with_metadata(engine):
    results = await collect(engine, ask("Name three colours.", max_tokens=30))
    partials = [r for r in results if r.partial]
    assert len(partials) > 3
    meta = partials[-1].metadata
    for key in ("tokens_generated", "current_token", "progress_percent", "estimated_total",
                "tokens_per_second", "ttft_ms", "model_name"):
        assert key in meta, key
    assert meta["model_name"] == MODEL and meta["estimated_total"] == 30
    final = results[-1]
    assert final.ok and final.metadata["finish_reason"] in ("stop", "length")
    assert 0 < final.metadata["tokens_generated"] <= 30
    assert "".join(r.outputs["delta"] for r in results) == final.text


async def test_text_equals_the_raw_client_answer(engine, llama_server):
    ours = await engine.run(ask("What is the capital of France?", max_tokens=24))
    async with openai.AsyncOpenAI(base_url=llama_server.url, api_key=API_KEY) as client:
        theirs = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "What is the capital of France?"}],
            max_tokens=24, temperature=0.0,
        )
    assert ours.text == theirs.choices[0].message.content
    assert ours.metadata["finish_reason"] == theirs.choices[0].finish_reason


async def test_request_body_carries_history_system_prompt_and_params(proxy, llama_server):
    history = [
        {"role": "system", "content": "Old system prompt."},
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada."},
        {"role": "user", "content": "What is my name?"},
    ]
    request = InferenceRequest({"messages": history}, {
        "system_prompt": "Be brief.", "max_tokens": 8, "temperature": 0.0, "seed": 7,
        "stop": ["\n\n"],
    })
    result = await proxied(proxy, llama_server).run(request)
    assert result.ok, result.error
    body = proxy.requests[-1]
    assert body["messages"] == [{"role": "system", "content": "Be brief."}, *history[1:]]
    assert body["model"] == MODEL and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert (body["max_tokens"], body["temperature"], body["seed"]) == (8, 0.0, 7)
    assert body["stop"] == ["\n\n"]


async def test_sentence_mode_emits_whole_sentences(engine):
    results = await collect(engine, ask("Tell me three facts about the sun.", max_tokens=120,
                                        stream_mode="sentence"))
    partials = [r for r in results if r.partial]
    assert partials, "no sentence was emitted"
    for i, r in enumerate(partials):
        assert r.outputs["sentence"].rstrip()[-1] in ".!?…:;\"')" or "\n" in r.outputs["delta"]
        assert r.metadata["sentence_index"] >= i
    assert results[-1].text.startswith(partials[-1].text)


async def test_cancel_closes_the_stream_and_the_server_stops(engine, llama_server):
    disconnects = llama_server.log_text().count("Disconnected from client")
    handle = engine.submit(ask(LONG, max_tokens=1900))
    async for result in handle:
        if result.metadata.get("tokens_generated", 0) >= 5:
            cancelled_at = time.perf_counter()
            handle.cancel()
            break
    terminal = await handle.result()
    assert time.perf_counter() - cancelled_at < 0.5
    assert terminal.ok and terminal.metadata["finish_reason"] == "cancelled"
    assert terminal.text.startswith(result.text)
    # the server noticed the closed stream and stopped generating: it idles, and at once
    # answers the next request (it serves one at a time)
    for _ in range(100):
        if llama_server.log_text().count("Disconnected from client") > disconnects:
            break
        await asyncio.sleep(0.05)
    assert llama_server.log_text().count("Disconnected from client") == disconnects + 1
    cpu = llama_server.cpu_seconds()
    await asyncio.sleep(1.0)
    assert llama_server.cpu_seconds() - cpu < 0.3, "the server still works after cancel"
    started = time.perf_counter()
    again = await engine.run(ask("Say hi.", max_tokens=4))
    assert again.ok and again.text
    assert time.perf_counter() - started < 10  # the long reply alone needs about 20 s


async def test_cancel_while_waiting_for_the_server(proxy, llama_server):
    proxy.plan = ["stall"]
    handle = proxied(proxy, llama_server).submit(ask("hi"))
    asyncio.get_running_loop().call_later(0.3, handle.cancel)
    started = time.perf_counter()
    terminal = await handle.result()
    assert terminal.metadata["finish_reason"] == "cancelled"
    assert time.perf_counter() - started < 1.0


async def test_server_killed_mid_stream_keeps_the_text():
    server = LlamaServer().start()
    try:
        engine = make_engine(OpenAIRunner(server.profile()))
        results = []
        async for result in engine.submit(ask(LONG, max_tokens=1900)):
            results.append(result)
            if result.metadata.get("tokens_generated") == 5:
                server.kill()
    finally:
        server.stop()
    final = results[-1]
    assert final.error is not None and final.error.code == "E102"
    assert not final.error.recoverable and "retries" not in final.metadata
    assert final.text and final.text.startswith(results[-2].text)


async def test_500_then_200_is_retried(proxy, llama_server):
    proxy.plan = [500, 500]
    result = await proxied(proxy, llama_server).run(ask("Say hi.", max_tokens=8))
    assert result.ok, result.error
    assert result.text and result.metadata["retries"] == 2
    assert len(proxy.requests) == 3


@pytest.mark.parametrize(
    ("status", "code", "attempts", "words"),
    [
        (503, "E102", 3, "server error (503)"),
        (429, "E429", 3, "rate limited (429)"),
        (401, "E101", 1, "authentication failed (401)"),
        (404, "E404", 1, "not found (404)"),
        (422, "E400", 1, "request rejected (422)"),
    ],
)
async def test_http_errors_map_to_codes(proxy, llama_server, status, code, attempts, words):
    proxy.plan = [status] * 5
    result = await proxied(proxy, llama_server).run(ask("hi"))
    assert result.error is not None and result.error.code == code
    assert words in result.error.message
    assert len(proxy.requests) == attempts


async def test_a_429_asking_for_a_long_wait_is_not_retried(proxy, llama_server):
    proxy.plan = [429] * 3
    proxy.retry_after = "120"
    result = await proxied(proxy, llama_server).run(ask("hi"))
    assert result.error is not None and result.error.code == "E429"
    assert result.error.retry_after_s == 120 and "wait 120 s" in result.error.message
    assert len(proxy.requests) == 1


async def test_429_once_is_retried(proxy, llama_server):
    proxy.plan = [429]
    result = await proxied(proxy, llama_server).run(ask("Say hi.", max_tokens=4))
    assert result.ok and result.metadata["retries"] == 1


async def test_wrong_api_key_is_a_clear_error(llama_server, caplog):
    caplog.set_level(logging.DEBUG)
    engine = make_engine(OpenAIRunner(llama_server.profile(api_key="wrong-key-1234")))
    result = await engine.run(ask("hi"))
    assert result.error is not None and result.error.code == "E101"
    assert "authentication failed (401)" in result.error.message
    assert not result.error.recoverable and "retries" not in result.metadata
    assert "wrong-key-1234" not in result.error.message + caplog.text


async def test_api_key_is_never_logged(engine, caplog):
    caplog.set_level(logging.DEBUG)
    result = await engine.run(ask("hi", max_tokens=2))
    assert result.ok
    assert caplog.records and API_KEY not in caplog.text
    assert API_KEY not in repr(engine.registry.get("openai").profile)


async def test_unknown_model_is_e404(engine):
    result = await engine.run(ask("hi", model="no-such-model"))
    assert result.error is not None and result.error.code == "E404"
    assert "no-such-model" in result.error.message and MODEL in result.error.message
    assert "retries" not in result.metadata


async def test_without_a_model_the_first_served_one_is_used(llama_server):
    engine = make_engine(OpenAIRunner(llama_server.profile(model=None)))
    result = await engine.run(ask("Say hi.", max_tokens=4))
    assert result.ok and result.metadata["model_name"] == MODEL


async def test_unreachable_port_is_e102_after_retries():
    url = f"http://127.0.0.1:{free_port()}/v1"
    engine = make_engine(OpenAIRunner())
    started = time.perf_counter()
    result = await engine.run(ask("hi", base_url=url, model=MODEL))
    assert result.error is not None and result.error.code == "E102"
    assert result.error.message.startswith("connection to")
    assert result.error.message.endswith("(after 2 retries)")
    assert result.metadata["retries"] == 2
    assert time.perf_counter() - started < 5


async def test_stalled_server_times_out_with_e103(proxy, llama_server):
    proxy.plan = ["stall"]
    no_retry = RetryPolicy(max_retries=0)
    engine = proxied(proxy, llama_server, no_retry, timeout_s=0.5)
    started = time.perf_counter()
    result = await engine.run(ask("hi"))
    assert result.error is not None and result.error.code == "E103"
    assert "gave no answer in 0.5 s" in result.error.message
    assert 0.5 <= time.perf_counter() - started < 3


async def test_stalled_server_is_retried_then_e103(proxy, llama_server):
    proxy.plan = ["stall", "stall"]
    engine = proxied(proxy, llama_server, RetryPolicy(max_retries=1, base_delay_s=0.01))
    result = await engine.run(ask("hi", timeout_s=0.3))
    assert result.error is not None and result.error.code == "E103"
    assert result.error.message.endswith("(after 1 retries)")
    assert "gave no answer" in result.error.message and len(proxy.requests) == 2


async def test_stall_mid_stream_is_e103_and_keeps_the_text(proxy, llama_server):
    proxy.plan = ["stall_mid"]
    # the timeout also bounds the wait for the first token: generous for a loaded machine
    engine = proxied(proxy, llama_server, RetryPolicy(max_retries=0), timeout_s=10.0)
    results = await collect(engine, ask(LONG, max_tokens=200))
    final = results[-1]
    assert final.error is not None and final.error.code == "E103"
    assert not final.error.recoverable and "retries" not in final.metadata
    assert final.text and final.text == results[-2].text


def _text_only(body: dict) -> dict:
    """What a vision server does with the image, for a text model: it reads the text."""
    for message in body["messages"]:
        if isinstance(message["content"], list):
            message["content"] = " ".join(
                p.get("text", "[image]") for p in message["content"]
            )
    return body


@pytest.mark.parametrize("as_path", [False, True])
async def test_vision_sends_the_image_as_a_data_url(proxy, llama_server, tmp_path, as_path):
    proxy.rewrite = _text_only
    image = PNG
    if as_path:
        image = str(tmp_path / "dot.png")
        (tmp_path / "dot.png").write_bytes(PNG)
    request = InferenceRequest({"image": image, "text": "What is in this picture?"},
                               {"max_tokens": 16, "temperature": 0.0})
    results = await collect(proxied(proxy, llama_server), request)
    content = proxy.requests[-1]["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "What is in this picture?"}
    url = content[1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == PNG
    assert results[0].metadata["analysis_step"] == "reading_image"
    texts = [r for r in results if r.partial and r.text]
    assert texts and all(r.metadata["analysis_step"] == "describing" for r in texts)
    assert all(r.outputs["scene_description"] == r.text for r in texts)
    final = results[-1]
    assert final.ok and final.outputs["scene_description"] == final.text
    assert (final.metadata["current_step"], final.metadata["total_steps"]) == (2, 2)


@pytest.mark.parametrize("image", [b"not an image", "/nonexistent/picture.png"])
async def test_bad_images_are_e400(engine, image):
    result = await engine.run(InferenceRequest({"image": image, "text": "hi"}))
    assert result.error is not None and result.error.code == "E400"


async def test_a_reply_to_continue_is_refused_not_answered_anew(engine):
    """A server would write a new reply after the unfinished one, not continue it."""
    messages = [{"role": "user", "content": "Count to ten."},
                {"role": "assistant", "content": "One, two,"}]
    result = await engine.run(InferenceRequest({"messages": messages}))
    assert result.error is not None and result.error.code == "E400"
    assert "does not continue a reply" in result.error.message
    assert not engine.first_runner(Capability.LLM).continues_replies  # ctrl+g is not offered


# -- profiles and configuration ---------------------------------------------------------------


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("BREEZE_CONFIG_DIR", str(tmp_path / "config"))
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "BREEZE_REMOTE_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "config"


def test_profiles_are_saved_owner_only_and_resolved(config_dir, monkeypatch):
    config_dir.mkdir()
    other = '[ui]\ntheme = "dark"\nsizes = [1, 2.5]\n[ui.colors]\nbg = "#000"\n'
    (config_dir / "config.toml").write_text(other)
    key = 'sk-"odd\\key'
    path = save_profile(RemoteProfile("lab", "http://10.0.0.5:8000/v1", model="m", api_key=key,
                                      max_retries=5), make_default=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert tomllib.loads(path.read_text())["ui"] == tomllib.loads(other)["ui"]  # kept
    assert load_profiles()["lab"].api_key == key and key not in repr(load_profiles()["lab"])
    endpoint = resolve_endpoint({})
    assert (endpoint.base_url, endpoint.model, endpoint.profile) == (
        "http://10.0.0.5:8000/v1", "m", "lab")
    assert endpoint.api_key == key and key not in repr(endpoint)
    assert retry_policy().max_retries == 5 and retry_policy().base_delay_s == 0.5
    given = resolve_endpoint({"base_url": "http://127.0.0.1:9/v1/", "model": "x", "timeout_s": 2})
    assert (given.base_url, given.model, given.timeout_s) == ("http://127.0.0.1:9/v1", "x", 2.0)
    monkeypatch.setenv("LAB_KEY", "from-env")
    assert resolve_endpoint(remote_params(api_key_env="LAB_KEY")).api_key == "from-env"
    remove_profile("lab")
    assert load_profiles() == {}
    assert "default_profile" not in tomllib.loads(path.read_text()).get("remote", {})
    with pytest.raises(BreezeError, match="E501"):
        resolve_endpoint({})
    with pytest.raises(BreezeError, match="E400"):
        RemoteProfile("bad name", "http://h/v1")


def test_the_environment_fills_what_params_and_profiles_leave_open(config_dir, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "env-key")
    endpoint = resolve_endpoint({})
    assert (endpoint.base_url, endpoint.api_key, endpoint.timeout_s) == (
        "http://127.0.0.1:8080/v1", "env-key", 60.0)
    save_profile(RemoteProfile("other", "http://other:1/v1", api_key_env="OTHER_KEY"))
    monkeypatch.setenv("BREEZE_REMOTE_PROFILE", "other")
    monkeypatch.setenv("OTHER_KEY", "other-key")
    endpoint = resolve_endpoint({})
    assert (endpoint.base_url, endpoint.api_key) == ("http://other:1/v1", "other-key")
    save_profile(RemoteProfile("keyless", "http://keyless:1/v1"))
    assert resolve_endpoint({"profile": "keyless"}).api_key is None  # not $OPENAI_API_KEY


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"profile": "nope"}, "E404"),
        ({"base_url": "http://h/v1", "api_key_env": "BREEZE_UNSET_VAR"}, "E400"),
        ({"base_url": "ftp://h/v1"}, "E400"),
        ({}, "E501"),
    ],
)
def test_configuration_errors(config_dir, params, code):
    with pytest.raises(BreezeError) as caught:
        resolve_endpoint(params)
    assert caught.value.error.code == code


async def test_an_unconfigured_runner_cannot_load(config_dir):
    result = await make_engine(OpenAIRunner()).run(ask("hi"))
    assert result.error is not None and result.error.code == "E501"
    assert "breeze remote add" in result.error.message


class _GarbageServer(BaseHTTPRequestHandler):
    """Answers /models and chat completions with what the test sets on the server."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, body: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(self.server.models, "application/json")  # type: ignore[attr-defined]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._send(self.server.events, "text/event-stream")  # type: ignore[attr-defined]


GOOD_MODELS = b'{"object": "list", "data": [{"id": "m", "object": "model"}]}'
GOOD_EVENTS = b'data: {"choices": [{"delta": {"content": "hi"}, "index": 0}]}\n\n'


@pytest.mark.parametrize(("models", "events"), [
    (b"<html>not json</html>", GOOD_EVENTS),
    (b'{"data": 5}', GOOD_EVENTS),
    (GOOD_MODELS, b"data: {not json\n\n"),
    (GOOD_MODELS, b'data: {"choices": 7}\n\n'),
    (GOOD_MODELS, b'data: {"choices": [{"delta": {"content": 5}, "index": 0}]}\n\n'),
])
async def test_a_reply_that_is_not_the_api_is_e102_and_not_retried(http_server, models, events):
    server = http_server(_GarbageServer, models=models, events=events)
    engine = make_engine(OpenAIRunner(), RetryPolicy(max_retries=2, base_delay_s=0.01))
    result = await engine.run(ask("hi", base_url=f"{server.url}/v1"))
    assert result.error is not None and result.error.code == "E102", result.error
    assert "is not" in result.error.message and server.url in result.error.message
    assert "retries" not in result.metadata
    await engine.aclose()


async def test_credentials_in_the_base_url_never_show(caplog, http_server):
    caplog.set_level(logging.DEBUG)
    secret = "sk-inurl-0123456789"
    server = http_server(_GarbageServer, models=b"garbage", events=GOOD_EVENTS)
    for url in (f"http://ada:{secret}@127.0.0.1:{free_port()}/v1",
                server.url.replace("://", f"://ada:{secret}@") + "/v1"):
        engine = make_engine(OpenAIRunner(), RetryPolicy(max_retries=0))
        result = await engine.run(ask("hi", base_url=url))
        await engine.aclose()
        assert result.error is not None and "ada:***@127.0.0.1" in result.error.message
        assert secret not in str(result.error) and secret not in str(result.metadata)
    assert secret not in caplog.text


def test_redact_url_hides_the_password_or_a_lone_user():
    assert redact_url("https://u:p@h:1/v1") == "https://u:***@h:1/v1"
    assert redact_url("https://KEY@h/v1") == "https://***@h/v1"
    assert redact_url("https://h/v1?x=1") == "https://h/v1?x=1"
