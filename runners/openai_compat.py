"""OpenAI-compatible runner (LLM, VLM): chat completions streamed from a serving engine
(vLLM, llama.cpp server, Ollama, a hosted API) under the engine's streaming contract.

Before the first token, connection errors, timeouts, 429 and 5xx end the attempt with a
recoverable error result, which the engine retries with backoff (`EngineSettings.retry`);
after it, a failure is final and keeps the text received. Cancel closes the HTTP stream at
once, so the server stops generating. `openai` is imported on first use.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import functools
import importlib
import importlib.util
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from breeze.engine import (
    BreezeError,
    CancelToken,
    Capability,
    InferenceRequest,
    InferenceResult,
    ParamSchema,
    ParamSpec,
    Runner,
    RunnerError,
    Support,
)
from breeze.engine.text import SentenceStream

from ._remote_config import Endpoint, RemoteProfile, resolve_endpoint

__all__ = ["OpenAIRunner"]

log = logging.getLogger("breeze.runners.openai")

_CANCELLED = object()  # what `_race` returns when the request was cancelled first
_END = object()  # the end of the chunk stream
_ENDPOINT_PARAMS = ("base_url", "profile", "api_key_env", "timeout_s", "model")
_SAMPLING = ("temperature", "top_p", "presence_penalty", "frequency_penalty", "seed", "stop")
# The seed's VLM progress: step 1 the server reads the image, step 2 it describes it.
_VLM_READING = {"analysis_step": "reading_image", "current_step": 1, "total_steps": 2}
_VLM_DESCRIBING = {"analysis_step": "describing", "current_step": 2, "total_steps": 2}
_VLM_DONE = {"analysis_step": "complete", "current_step": 2, "total_steps": 2}


class OpenAIRunner(Runner):
    name = "openai"
    capabilities = frozenset({Capability.LLM, Capability.VLM})
    priority = 50

    def __init__(self, profile: RemoteProfile | None = None) -> None:
        """`profile`: the server to use when a request names none (else the config's)."""
        self.profile = profile
        self._endpoints: dict[tuple[Any, ...], Endpoint] = {}
        self._served: dict[str, tuple[str, ...] | None] = {}  # model ids per base URL
        self._model = profile.model if profile else None

    def is_supported(self) -> Support:
        if importlib.util.find_spec("openai") is None:
            return Support(False, "the openai package is missing: pip install openai")
        return Support(True)

    def param_schema(self) -> ParamSchema:
        return ParamSchema([
            ParamSpec("temperature", float, None, 0.0, 2.0, description="0 is greedy"),
            ParamSpec("top_p", float, None, 0.0, 1.0),
            ParamSpec("max_tokens", int, 512, 1, 1_000_000),
            ParamSpec("presence_penalty", float, None, -2.0, 2.0),
            ParamSpec("frequency_penalty", float, None, -2.0, 2.0),
            ParamSpec("seed", int, None, description="fixed sampling seed"),
            ParamSpec("stop", list, None, description="strings that end the reply"),
            ParamSpec("base_url", str, None, description="e.g. http://127.0.0.1:8000/v1"),
            ParamSpec("profile", str, None, description="remote profile in the config"),
            ParamSpec("api_key_env", str, None, description="env variable with the API key"),
            ParamSpec("timeout_s", float, None, 0.01, 3600.0, description="E103 after that"),
            ParamSpec("include_usage", bool, True, description="ask for token counts"),
        ])

    @property
    def model_name(self) -> str | None:
        return self._model

    def load(self, params: Mapping[str, Any]) -> None:
        """Resolve the server for these params (E501 when none is configured)."""
        self._endpoints[_endpoint_key(params)] = resolve_endpoint(params, self.profile)

    async def stream(
        self, request: InferenceRequest, token: CancelToken
    ) -> AsyncIterator[InferenceResult]:
        endpoint = self._endpoints.get(_endpoint_key(request.params))
        if endpoint is None:
            endpoint = await asyncio.to_thread(resolve_endpoint, request.params, self.profile)
        async for result in _Completion(self, endpoint, request, token).run():
            yield result

    async def _served_model(self, client: Any, endpoint: Endpoint) -> str:
        """The model to ask for: the wanted one if the server lists it (E404 if not), else
        the first one it lists. The list is fetched once per server, again on a miss."""
        wanted, base_url = endpoint.model, endpoint.base_url
        served = self._served.get(base_url)
        if base_url not in self._served or (wanted and served is not None and wanted not in served):
            try:
                served = tuple(str(model.id) for model in (await client.models.list()).data)
            except _openai().NotFoundError:
                served = None
            except (ValueError, TypeError, AttributeError) as exc:  # not JSON, not a list
                raise BreezeError("E102", f"{endpoint.shown_url}/models is not a model list "
                                          f"({type(exc).__name__}: {exc})", False) from None
            self._served[base_url] = served
        if served is None:  # the server does not list its models: trust the name
            if wanted is None:
                raise BreezeError("E400", f"{endpoint.shown_url} does not list its models: "
                                          "pass --model")
            return wanted
        chosen = wanted or next(iter(served), None)
        if chosen is None or chosen not in served:
            listed = ", ".join(served) or "none"
            raise BreezeError("E404", f"model {chosen!r} is not served at {endpoint.shown_url} "
                                      f"({listed})")
        return chosen


class _Completion:
    """One streamed chat completion: the text so far, its counters and how it ended."""

    def __init__(self, runner: OpenAIRunner, endpoint: Endpoint, request: InferenceRequest,
                 token: CancelToken) -> None:
        self.runner, self.endpoint, self.request, self.token = runner, endpoint, request, token
        self.params = request.params
        self.vision = request.capability is Capability.VLM or "image" in request.inputs
        self.sentences = SentenceStream() if self.params.get("stream_mode") == "sentence" \
            else None
        # the text, how much of it was emitted, content chunks (a token each on most servers)
        self.text, self.sent, self.tokens = "", 0, 0
        self.started = time.perf_counter()
        self.first_at: float | None = None
        self.finish: str | None = None
        self.error: RunnerError | None = None
        self.meta: dict[str, Any] = {"remote_profile": endpoint.profile}

    async def run(self) -> AsyncIterator[InferenceResult]:
        cancelled = asyncio.ensure_future(self.token.wait_async())
        try:
            async with _client(self.endpoint) as client, contextlib.aclosing(
                self._partials(client, cancelled)
            ) as partials:
                async for partial in partials:
                    yield partial
        except BreezeError as exc:
            self.error = exc.error
        except (_openai().OpenAIError, _http().HTTPError, OSError) as exc:
            self.error = _error_for(exc, self.endpoint, received=bool(self.text))
        finally:
            cancelled.cancel()
        yield self._terminal()

    async def _partials(
        self, client: Any, cancelled: asyncio.Future[None]
    ) -> AsyncGenerator[InferenceResult, None]:
        endpoint = self.endpoint
        messages = await _messages(self.request)  # bad input fails before any network use
        model = await _race(self.runner._served_model(client, endpoint), cancelled)
        if model is _CANCELLED:
            return
        self.runner._model = self.meta["model_name"] = model
        body = self._body(model, messages)
        log.debug("chat completion: %s model=%s", endpoint.shown_url, model)
        stream = await _race(client.chat.completions.create(**body), cancelled)
        if stream is _CANCELLED:
            return
        try:
            if self.vision:
                yield InferenceResult.success(metadata=_VLM_READING, partial=True)
            chunks = stream.__aiter__()
            while not self.token.cancelled:
                try:
                    chunk = await _race(anext(chunks, _END), cancelled)
                except ValueError as exc:  # an event that is not JSON
                    raise _malformed(self.endpoint, exc) from None
                if chunk is _CANCELLED:
                    break
                if chunk is _END:
                    if self.finish is None:
                        raise BreezeError("E102", "the stream ended before the reply did",
                                          recoverable=not self.text)
                    break
                partial = self._on_chunk(chunk)
                if partial is not None:
                    yield partial
        finally:
            await stream.close()  # closes the connection mid-stream: the server stops

    def _body(self, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        params = self.params
        body = {"model": model, "messages": messages, "stream": True,
                "max_tokens": params["max_tokens"]}
        body.update({k: params[k] for k in _SAMPLING if params.get(k) is not None})
        if params.get("include_usage", True):
            body["stream_options"] = {"include_usage": True}
        return body

    def _on_chunk(self, chunk: Any) -> InferenceResult | None:
        try:
            return self._read_chunk(chunk)
        except (TypeError, LookupError, AttributeError) as exc:  # fields of the wrong shape
            raise _malformed(self.endpoint, exc) from None

    def _read_chunk(self, chunk: Any) -> InferenceResult | None:
        if chunk.usage is not None:
            self.meta["prompt_tokens"] = chunk.usage.prompt_tokens
            self.meta["completion_tokens"] = chunk.usage.completion_tokens
        if not chunk.choices:
            return None
        choice = chunk.choices[0]
        self.finish = choice.finish_reason or self.finish
        piece = choice.delta.content if choice.delta else None
        if not piece:
            return None
        if not isinstance(piece, str):
            raise TypeError(f"delta.content is {type(piece).__name__}, not text")
        self.tokens += 1
        if self.first_at is None:
            self.first_at = time.perf_counter()
            self.meta["ttft_ms"] = round((self.first_at - self.started) * 1000, 3)
        self.text += piece
        return self._progress(piece)

    def _progress(self, piece: str) -> InferenceResult | None:
        visible = len(self.text)
        if self.sentences is not None:
            complete = self.sentences.feed(self.text)
            if not complete:
                return None
            visible = self.sentences.end
            self.meta["sentence_index"] = self.meta.get("sentence_index", -1) + len(complete)
        delta, self.sent = self.text[self.sent:visible], visible
        outputs: dict[str, Any] = {"text": self.text[:visible], "delta": delta}
        if self.sentences is not None:
            outputs["sentence"] = delta.strip()
        budget = self.params["max_tokens"]
        metadata = {**self.meta, "tokens_generated": self.tokens, "current_token": piece,
                    "tokens_per_second": self._speed(), "estimated_total": budget,
                    "progress_percent": round(min(100.0, 100 * self.tokens / budget), 1)}
        if self.vision:
            outputs["scene_description"] = outputs["text"]
            metadata.update(_VLM_DESCRIBING)
        return InferenceResult.success(outputs, metadata, partial=True)

    def _speed(self) -> float | None:
        if self.first_at is None or self.tokens < 2:
            return None
        elapsed = time.perf_counter() - self.first_at
        return round((self.tokens - 1) / elapsed, 2) if elapsed > 0 else None

    def _terminal(self) -> InferenceResult:
        outputs: dict[str, Any] = {"text": self.text, "delta": self.text[self.sent:]}
        if self.vision:
            outputs["scene_description"] = self.text
        tokens = self.meta.get("completion_tokens", self.tokens)  # the server's count if given
        metadata = {**self.meta, "tokens_generated": tokens, "tokens_per_second": self._speed()}
        if self.error is not None:
            return InferenceResult.failure(self.error, outputs if self.text else {}, metadata)
        metadata["finish_reason"] = "cancelled" if self.token.cancelled else self.finish
        if self.vision:
            metadata.update(_VLM_DONE)
        return InferenceResult.success(outputs, metadata)


async def _race(awaitable: Awaitable[Any], cancelled: asyncio.Future[None]) -> Any:
    """The awaitable's result, or _CANCELLED when `cancelled` completes first (the awaitable
    is then cancelled, which closes what it was reading)."""
    task = asyncio.ensure_future(awaitable)
    try:
        await asyncio.wait((task, cancelled), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait((task,))
    return _CANCELLED if task.cancelled() else task.result()


def _endpoint_key(params: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(params.get(name) for name in _ENDPOINT_PARAMS)


def _openai() -> Any:
    return importlib.import_module("openai")


@functools.cache
def _http() -> Any:
    """The HTTP library the installed openai client is built on: httpx2, or httpx before."""
    return importlib.import_module("httpx2" if importlib.util.find_spec("httpx2") else "httpx")


@functools.cache
def _ssl_context() -> Any:
    """One TLS context for every client (building one costs tens of milliseconds)."""
    return _http().create_ssl_context()


def _client(endpoint: Endpoint) -> Any:
    """A client for one request, closed after it; the engine does the retrying."""
    timeout = _http().Timeout(endpoint.timeout_s)
    # `user:password@` in the URL becomes basic auth: a URL is logged, a header is not
    parts = urlsplit(endpoint.base_url)
    auth = (unquote(parts.username or ""), unquote(parts.password or "")) \
        if parts.username is not None else None
    base_url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    http = _http().AsyncClient(verify=_ssl_context(), timeout=timeout, follow_redirects=True,
                               auth=auth)
    key = endpoint.api_key or "none"  # servers without authentication ignore it
    client = _openai().AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0,
                                   timeout=timeout, http_client=http)
    return client


def _error_for(exc: Exception, endpoint: Endpoint, received: bool) -> RunnerError:
    """The error result for a failed request; recoverable only when retrying could help and
    nothing was received yet."""
    openai, http, where = _openai(), _http(), endpoint.shown_url
    retry_after: float | None = None
    if isinstance(exc, openai.APITimeoutError | http.TimeoutException):
        code, message, retry = "E103", f"{where} gave no answer in {endpoint.timeout_s:g} s", True
    elif isinstance(exc, openai.APIConnectionError | http.TransportError | OSError):
        cause = exc.__cause__ or exc
        code, message, retry = "E102", f"connection to {where} failed: {cause}", True
    elif isinstance(exc, openai.APIStatusError):
        code, message, retry = _status_error(exc.status_code, exc.message, where)
        retry_after = _retry_after(exc.response.headers.get("retry-after"))
    else:  # an error event inside the stream, a malformed chunk
        code, message, retry = "E102", f"{where} broke the stream: {exc}", False
    if endpoint.api_key:
        message = message.replace(endpoint.api_key, "***")
    if retry_after is not None:
        message += f" (the server asks to wait {retry_after:g} s)"
    error = RunnerError.of(code, message, retry and not received)
    return replace(error, retry_after_s=retry_after)


def _malformed(endpoint: Endpoint, exc: Exception) -> BreezeError:
    """A stream whose events are not what the chat completions API defines (asking again
    would not change that)."""
    return BreezeError("E102", f"{endpoint.shown_url} sent a stream that is not an "
                               f"OpenAI-compatible one ({type(exc).__name__}: {exc})", False)


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# HTTP status -> error code, what happened, whether retrying may help
_STATUS = {401: ("E101", "authentication failed", False), 403: ("E101", "forbidden", False),
           404: ("E404", "not found", False), 429: ("E429", "rate limited", True),
           400: ("E400", "request rejected", False), 413: ("E400", "request too large", False),
           422: ("E400", "request rejected", False)}


def _status_error(status: int, detail: str, where: str) -> tuple[str, str, bool]:
    server = ("E102", "server error", True) if status >= 500 else ("E101", "HTTP error", False)
    code, what, retry = _STATUS.get(status, server)
    hint = "check the API key" if status in (401, 403) else detail[:300]
    return code, f"{what} ({status}) at {where}: {hint}", retry


async def _messages(request: InferenceRequest) -> list[dict[str, Any]]:
    inputs, params = request.inputs, request.params
    if "messages" in inputs:
        messages: list[dict[str, Any]] = [dict(m) for m in inputs["messages"]]
    else:
        messages = [{"role": "user", "content": str(inputs.get("text", ""))}]
    image = inputs.get("image")
    if request.capability is Capability.VLM and image is None:
        raise BreezeError("E400", "a vision request needs an image")
    if image is None and not any(m["content"].strip() for m in messages if m["role"] == "user"):
        raise BreezeError("E400", "the prompt is empty")
    if messages[-1]["role"] != "user":
        raise BreezeError("E400", "the last message must be the user's: this runner "
                                  "does not continue a reply")
    if params.get("system_prompt"):
        messages = [m for m in messages if m["role"] != "system"]
        messages.insert(0, {"role": "system", "content": params["system_prompt"]})
    if image is not None:
        prompt = messages[-1]["content"].strip() or "Describe this image."
        messages[-1] = {"role": "user", "content": [
            {"type": "text", "text": prompt},
            {"type": "image_url", "image_url": {"url": await _image_url(image)}},
        ]}
    return messages


_IMAGE_MAGIC = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg",
                b"GIF87a": "image/gif", b"GIF89a": "image/gif", b"BM": "image/bmp"}


async def _image_url(image: bytes | bytearray | str) -> str:
    """A data URL for image bytes or a file path; http(s) and data URLs pass through."""
    if isinstance(image, str):
        if image.startswith(("http://", "https://", "data:")):
            return image
        image = await asyncio.to_thread(_read_image, image)
    data = bytes(image)
    mime = next((m for magic, m in _IMAGE_MAGIC.items() if data.startswith(magic)), None)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        mime = "image/webp"
    if mime is None:
        raise BreezeError("E400", "the image is not a PNG, JPEG, GIF, WebP or BMP file")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _read_image(path: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise BreezeError("E400", f"cannot read the image {path}: {exc.strerror}") from None


RUNNERS = [OpenAIRunner]
