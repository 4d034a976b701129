"""Runner test fixtures: a real OpenAI-compatible server (`python -m llama_cpp.server` with
the embedded SmolLM2) on 127.0.0.1, and a proxy in front of it that injects failures."""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from breeze.engine.models import resolve
from breeze.runners._remote_config import RemoteProfile

API_KEY = "breeze-test-key-7f3a"
MODEL = "smollm2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """`python -m llama_cpp.server` on a free port, serving SmolLM2 as `smollm2`."""

    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = Path(tempfile.mkstemp(prefix="breeze-llama-server-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 120.0) -> LlamaServer:
        command = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(resolve(None)),
            "--model_alias", MODEL, "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", "2048", "--n_threads", str(os.cpu_count() or 1),
            "--api_key", self.api_key,
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},  # its log lines arrive at once
            )
        self._wait_ready(timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        headers = {"Authorization": f"Bearer {self.api_key}"}
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"llama_cpp.server exited:\n{self.log_text()[-2000:]}")
                try:
                    if client.get(f"{self.url}/models", headers=headers).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not start in {timeout_s} s")

    def profile(self, **overrides: Any) -> RemoteProfile:
        fields = {"name": "test", "base_url": self.url, "model": MODEL, "api_key": self.api_key}
        return RemoteProfile(**{**fields, **overrides})

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def cpu_seconds(self) -> float:
        """CPU time the server process has used (user + system)."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self) -> None:
        """SIGKILL: the server dies at once, mid-response."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log_path.unlink(missing_ok=True)


_shared: LlamaServer | None = None


def shared_server() -> LlamaServer:
    """The one server of this test process, started on first use (the contract cases, the
    runner and e2e tests share it) and stopped at exit at the latest."""
    global _shared
    if _shared is None or _shared.process is None or _shared.process.poll() is not None:
        _shared = LlamaServer().start()
        atexit.register(_shared.stop)
    return _shared


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LlamaServer]:
    server = shared_server()
    yield server
    server.stop()


class FaultProxy:
    """An HTTP proxy to `upstream` that misbehaves on cue. Each POST to .../chat/completions
    takes the next action from `plan`: an HTTP status to answer with, "stall" (never answer),
    "stall_mid" (forward a few events, then go silent) or "forward" (also when `plan` is
    empty). `requests` records the JSON bodies; `rewrite` may change them before forwarding.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.removesuffix("/v1")
        self.plan: list[int | str] = []
        self.requests: list[dict[str, Any]] = []
        self.rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self.retry_after: str | None = None  # the Retry-After header of injected statuses
        self.released = threading.Event()
        handler = type("Handler", (_ProxyHandler,), {"proxy": self})
        self.server = _QuietServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def next_action(self) -> int | str:
        return self.plan.pop(0) if self.plan else "forward"

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that hung up
            super().handle_error(request, client_address)


_HOP_HEADERS = {"content-length", "transfer-encoding", "connection", "date", "server"}


class _ProxyHandler(BaseHTTPRequestHandler):
    proxy: FaultProxy
    protocol_version = "HTTP/1.0"  # the connection's end ends each response: no chunking

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._forward(None, "forward")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not self.path.endswith("/chat/completions"):
            return self._forward(body, "forward")
        data = json.loads(body)
        self.proxy.requests.append(data)
        action = self.proxy.next_action()
        if action == "stall":
            self.proxy.released.wait()
        elif isinstance(action, int):
            error = {"error": {"message": f"injected {action}", "type": "server_error"}}
            payload = json.dumps(error).encode()
            self.send_response(action)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if self.proxy.retry_after is not None:
                self.send_header("Retry-After", self.proxy.retry_after)
            self.end_headers()
            self.wfile.write(payload)
        else:
            if self.proxy.rewrite is not None:
                body = json.dumps(self.proxy.rewrite(json.loads(body))).encode()
            self._forward(body, action)

    def _forward(self, body: bytes | None, action: int | str) -> None:
        keep = ("authorization", "content-type")
        headers = {k: v for k, v in self.headers.items() if k.lower() in keep}
        url = self.proxy.upstream + self.path
        with httpx.Client(timeout=None) as client, client.stream(
            self.command, url, content=body, headers=headers
        ) as response:
            self.send_response(response.status_code)
            for key, value in response.headers.items():
                if key.lower() not in _HOP_HEADERS:
                    self.send_header(key, value)
            self.end_headers()
            events = 0
            for chunk in response.iter_raw():
                self.wfile.write(chunk)
                self.wfile.flush()
                events += chunk.count(b"data:")
                if action == "stall_mid" and events >= 5:
                    self.proxy.released.wait()
                    return


@pytest.fixture
def proxy(llama_server: LlamaServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(llama_server.url)
    yield proxy
    proxy.close()
