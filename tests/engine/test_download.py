"""Downloads against a real HTTP server on 127.0.0.1: resume, verification, errors, cancel."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from typer.testing import CliRunner

from breeze.engine.cancel import CancelToken
from breeze.engine.errors import BreezeError
from breeze.engine.models import ModelEntry, find, local_path, pull, remove, resolve
from tests.engine.test_models import load_cli
from tests.http_server import LocalHTTPServer

PAYLOAD = b"GGUF" + os.urandom(300 * 1024 - 4)
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
CORRUPT = PAYLOAD[:1000] + bytes([PAYLOAD[1000] ^ 0xFF]) + PAYLOAD[1001:]  # always differs
PATH = "/test/Fake-GGUF/resolve/main/fake.gguf"


@dataclass
class Behaviour:
    """What the server does next; tests change it between requests."""

    mode: str = "ok"  # ok | corrupt | 404 | 500 | stall
    cut_after: int | None = None  # close the connection after this many body bytes (once)
    ranges: bool = True  # honour Range with 206; False answers 200 with the whole file
    requests: list[dict[str, str | None]] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    server: LocalHTTPServer  # with a `behaviour`

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        how = self.server.behaviour
        how.requests.append({"path": self.path, "range": self.headers.get("Range")})
        if how.mode in ("404", "500") or self.path != PATH:
            code = 500 if how.mode == "500" else 404
            self.send_error(code)
            return
        if how.mode == "stall":
            time.sleep(0.5)
        data = PAYLOAD if how.mode != "corrupt" else CORRUPT
        start = 0
        wanted = self.headers.get("Range")
        if wanted and how.ranges:
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if how.cut_after is not None:
            body, how.cut_after = body[: how.cut_after], None
            self.close_connection = True
        try:
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:  # the client went away (cancelled): nothing to do
            pass


@pytest.fixture
def server(http_server) -> LocalHTTPServer:
    return http_server(Handler, behaviour=Behaviour())


def write_catalog(path: Path, port: int, **fields: object) -> None:
    values: dict[str, object] = {
        "id": "fake",
        "name": "Fake GGUF",
        "capability": "LLM",
        "source": "huggingface",
        "repo": "test/Fake-GGUF",
        "file": "fake.gguf",
        "size": len(PAYLOAD),
        "sha256": SHA256,
    }
    values.update(fields)
    lines = ["[[model]]"]
    for key, value in values.items():
        lines.append(f"{key} = {value}" if isinstance(value, int) else f'{key} = "{value}"')
    lines += ["", "[[model]]", 'id = "offline"', 'name = "Unreachable"', 'capability = "LLM"',
              'source = "url"', f'url = "http://127.0.0.1:{port}/offline.gguf"']
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def env(server, tmp_path, monkeypatch) -> Path:
    """A temporary catalog, models dir and Hugging Face endpoint; returns the models dir."""
    catalog = tmp_path / "catalog.toml"
    write_catalog(catalog, free_port())
    monkeypatch.setenv("BREEZE_CATALOG", str(catalog))
    monkeypatch.setenv("BREEZE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("BREEZE_HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}/")
    return tmp_path / "models"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reconfigure(tmp_path: Path, **fields: object) -> ModelEntry:
    write_catalog(tmp_path / "catalog.toml", free_port(), **fields)
    return find(fields.get("id", "fake"))  # type: ignore[arg-type]


def code_and_recoverable(excinfo: pytest.ExceptionInfo[BreezeError]) -> tuple[str, bool]:
    return excinfo.value.error.code, excinfo.value.error.recoverable


def test_a_full_download_is_verified_and_reports_progress(env, server):
    calls: list[tuple[int, int | None]] = []
    path = pull(find("fake"), lambda done, total: calls.append((done, total)))
    assert path == env / "fake.gguf" and path.read_bytes() == PAYLOAD
    assert calls[0] == (0, len(PAYLOAD)) and calls[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert not (env / "fake.gguf.part").exists()
    assert not (env / "fake.gguf.sha256").exists()  # the catalog knows the hash
    assert resolve("fake") == path == local_path(find("fake"))
    assert server.behaviour.requests == [{"path": PATH, "range": None}]
    assert pull(find("fake")) == path  # already present: no second request
    assert len(server.behaviour.requests) == 1


def test_an_unknown_hash_is_recorded_next_to_the_file(env, server, tmp_path):
    entry = reconfigure(tmp_path, sha256="", size=0)
    path = pull(entry)
    assert path.read_bytes() == PAYLOAD
    assert (env / "fake.gguf.sha256").read_text() == f"{SHA256}  fake.gguf\n"
    assert remove(entry) is True
    assert not path.exists() and not (env / "fake.gguf.sha256").exists()
    assert remove(entry) is False


def test_a_corrupt_download_is_deleted(env, server):
    server.behaviour.mode = "corrupt"
    with pytest.raises(BreezeError, match="checksum mismatch") as excinfo:
        pull(find("fake"))
    assert code_and_recoverable(excinfo) == ("E500", False)
    assert sorted(env.iterdir()) == []


def test_a_wrong_size_is_refused(env, server, tmp_path):
    entry = reconfigure(tmp_path, size=len(PAYLOAD) + 1)
    with pytest.raises(BreezeError, match="size mismatch") as excinfo:
        pull(entry)
    assert excinfo.value.error.code == "E500"
    assert not (env / "fake.gguf").exists()


def test_an_interrupted_download_resumes_with_range(env, server):
    server.behaviour.cut_after = 100_000
    with pytest.raises(BreezeError) as excinfo:
        pull(find("fake"))
    assert code_and_recoverable(excinfo) == ("E500", True)
    part = env / "fake.gguf.part"
    have = part.stat().st_size
    assert 0 < have < len(PAYLOAD) and not (env / "fake.gguf").exists()
    calls: list[tuple[int, int | None]] = []
    path = pull(find("fake"), lambda done, total: calls.append((done, total)))
    assert server.behaviour.requests[-1]["range"] == f"bytes={have}-"
    assert calls[0] == (have, len(PAYLOAD)) and calls[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHA256
    assert not part.exists()


def test_a_server_ignoring_range_restarts_from_zero(env, server):
    (env / "fake.gguf.part").parent.mkdir(parents=True, exist_ok=True)
    (env / "fake.gguf.part").write_bytes(b"stale bytes from another file")
    server.behaviour.ranges = False
    path = pull(find("fake"))
    assert server.behaviour.requests[-1]["range"] == "bytes=29-"
    assert path.read_bytes() == PAYLOAD


def test_404_is_e500_naming_the_url(env, server, tmp_path):
    entry = reconfigure(tmp_path, file="missing.gguf")
    with pytest.raises(BreezeError, match="404") as excinfo:
        pull(entry)
    assert code_and_recoverable(excinfo) == ("E500", False)
    assert "/test/Fake-GGUF/resolve/main/missing.gguf" in excinfo.value.error.message
    assert list(env.iterdir()) == []


def test_a_server_error_is_recoverable(env, server):
    server.behaviour.mode = "500"
    with pytest.raises(BreezeError, match="HTTP 500") as excinfo:
        pull(find("fake"))
    assert code_and_recoverable(excinfo) == ("E500", True)


def test_cancel_leaves_the_part_for_a_resume(env, server):
    token = CancelToken()

    def progress(done: int, total: int | None) -> None:
        if done > 0:
            token.cancel()

    with pytest.raises(BreezeError, match="download cancelled") as excinfo:
        pull(find("fake"), progress, token)
    assert code_and_recoverable(excinfo) == ("E500", True)
    have = (env / "fake.gguf.part").stat().st_size
    assert 0 < have < len(PAYLOAD) and not (env / "fake.gguf").exists()
    with pytest.raises(BreezeError, match="cancelled"):
        pull(find("fake"), token=token)  # an already-cancelled token does nothing
    assert pull(find("fake")).read_bytes() == PAYLOAD
    assert server.behaviour.requests[-1]["range"] == f"bytes={have}-"


def test_an_unreachable_server_is_a_recoverable_e500(env, server):
    with pytest.raises(BreezeError, match="connection failed") as excinfo:
        pull(find("offline"), connect_timeout=1.0)
    assert code_and_recoverable(excinfo) == ("E500", True)


def test_a_stalled_server_times_out(env, server):
    server.behaviour.mode = "stall"
    with pytest.raises(BreezeError, match="timed out") as excinfo:
        pull(find("fake"), read_timeout=0.1)
    assert code_and_recoverable(excinfo) == ("E500", True)


def test_cli_pull_downloads_and_rm_removes(env, server):
    app = load_cli().app
    result = CliRunner().invoke(app, ["pull", "fake"])
    assert result.exit_code == 0, result.output
    assert Path(result.stdout.strip()) == env / "fake.gguf"
    assert (env / "fake.gguf").read_bytes() == PAYLOAD
    result = CliRunner().invoke(app, ["rm", "fake"])
    assert result.exit_code == 0 and "removed fake" in result.stdout
    server.behaviour.mode = "404"
    result = CliRunner().invoke(app, ["pull", "fake"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("E500: HTTP 404 not found: http:")
