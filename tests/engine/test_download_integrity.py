"""A download is installed only when it is known to be whole: sizes from every source, Hugging
Face's X-Linked-* headers, zip and GGUF checks, and the `.sha256` record read back later.
All against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from typer.testing import CliRunner

from breeze.engine.errors import BreezeError
from breeze.engine.models import find, local_path, pull, statuses
from tests.engine.test_models import load_cli
from tests.http_server import LocalHTTPServer

PAYLOAD = b"GGUF" + os.urandom(300 * 1024 - 4)
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
SIZE = len(PAYLOAD)
CORRUPT = PAYLOAD[:1000] + bytes([PAYLOAD[1000] ^ 0xFF]) + PAYLOAD[1001:]
HF_PATH = "/test/Repo/resolve/main/m.gguf"
CDN_PATH = "/cdn/m.gguf"


@dataclass
class Served:
    """One file of the server and how it is sent."""

    body: bytes
    length: bool = True  # send Content-Length
    chunked: bool = False  # Transfer-Encoding: chunked
    cut_after: int | None = None  # send this many body bytes, then close (once)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Site:
    files: dict[str, Served] = field(default_factory=dict)
    redirects: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    url: str = ""


class Handler(BaseHTTPRequestHandler):
    server: LocalHTTPServer  # with a `site`

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        site: Site = self.server.site  # type: ignore[attr-defined]
        site.requests.append((self.path, self.headers.get("Range")))
        if self.path in site.redirects:
            location, headers = site.redirects[self.path]
            self.send_response(302)
            self.send_header("Location", location)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        served = site.files.get(self.path)
        if served is None:
            self.send_error(404)
            return
        if served.chunked:
            self.protocol_version = "HTTP/1.1"
        start, wanted, whole = 0, self.headers.get("Range"), len(served.body)
        if wanted:
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{whole - 1}/{whole}")
        else:
            self.send_response(200)
        body = served.body[start:]
        if served.length:
            self.send_header("Content-Length", str(len(body)))
        if served.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        for name, value in served.headers.items():
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        cut = served.cut_after is not None
        if cut:
            body, served.cut_after = body[: served.cut_after], None
        try:
            self._write(body, served.chunked, finish=not cut)
        except OSError:  # the client went away
            pass

    def _write(self, body: bytes, chunked: bool, finish: bool) -> None:
        if not chunked:
            self.wfile.write(body)
            return
        for start in range(0, len(body), 65536):
            piece = body[start : start + 65536]
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        if finish:
            self.wfile.write(b"0\r\n\r\n")


@pytest.fixture
def site(http_server, tmp_path, monkeypatch) -> Site:
    site = Site()
    server = http_server(Handler, site=site)
    monkeypatch.setenv("BREEZE_HF_ENDPOINT", server.url)
    monkeypatch.setenv("BREEZE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("BREEZE_CATALOG", str(tmp_path / "catalog.toml"))
    site.url = server.url
    return site


@pytest.fixture
def models(site, tmp_path) -> Path:
    return tmp_path / "models"


def catalog(tmp_path: Path, **fields: object) -> None:
    """One model `m`: a url source by default, a Hugging Face one with `repo`."""
    values: dict[str, object] = {"id": "m", "name": "M", "capability": "LLM"}
    if "repo" in fields:
        values |= {"source": "huggingface", "file": "m.gguf"}
    else:
        values |= {"source": "url"}
    values |= fields
    text = "[[model]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
    (tmp_path / "catalog.toml").write_text(text)


def code_and_recoverable(excinfo: pytest.ExceptionInfo[BreezeError]) -> tuple[str, bool]:
    return excinfo.value.error.code, excinfo.value.error.recoverable


def hugging_face(site: Site, served: Served, *, size: bool = True, etag: str = SHA256) -> None:
    """The Hub's way: /resolve/ redirects to a CDN, naming the LFS file's sha256 and size."""
    headers = {"X-Linked-Etag": f'"{etag}"'} if etag else {}
    if size:
        headers["X-Linked-Size"] = str(SIZE)
    site.redirects[HF_PATH] = (CDN_PATH, headers)
    site.files[CDN_PATH] = served


# --- (a) a body that ends early is never installed --------------------------------------------

CUT_CASES = ["catalog size", "Content-Length", "X-Linked-Size", "Content-Range"]


@pytest.mark.parametrize("known_from", CUT_CASES)
def test_a_body_that_ends_early_stays_a_part_and_fails_e500(known_from, site, models, tmp_path):
    path = "/m.gguf"
    served = Served(PAYLOAD, length=False, cut_after=100_000)
    if known_from == "catalog size":
        catalog(tmp_path, url=site.url + path, size=SIZE)
        site.files[path] = served
    elif known_from == "Content-Length":
        catalog(tmp_path, url=site.url + path)
        served.length = True
        site.files[path] = served
    elif known_from == "X-Linked-Size":
        catalog(tmp_path, repo="test/Repo")
        hugging_face(site, served, etag="")
    else:  # a resumed download: the 206's Content-Range names the whole size
        catalog(tmp_path, url=site.url + path)
        models.mkdir()
        (models / "m.gguf.part").write_bytes(PAYLOAD[:50_000])
        served.cut_after = 50_000
        site.files[path] = served
    with pytest.raises(BreezeError) as excinfo:
        pull(find("m"))
    assert code_and_recoverable(excinfo) == ("E500", True)
    assert f"got 100000 of {SIZE} bytes" in excinfo.value.error.message
    assert not (models / "m.gguf").exists() and local_path(find("m")) is None
    assert (models / "m.gguf.part").read_bytes() == PAYLOAD[:100_000]

    path_ = pull(find("m"))  # the server behaves now: the .part is resumed, not restarted
    assert site.requests[-1][1] == "bytes=100000-"
    assert path_.read_bytes() == PAYLOAD and not (models / "m.gguf.part").exists()


def test_a_cut_chunked_body_is_not_installed(site, models, tmp_path):
    catalog(tmp_path, url=site.url + "/m.gguf")
    site.files["/m.gguf"] = Served(PAYLOAD, length=False, chunked=True, cut_after=100_000)
    with pytest.raises(BreezeError) as excinfo:
        pull(find("m"))
    assert code_and_recoverable(excinfo) == ("E500", True)
    assert not (models / "m.gguf").exists()
    assert pull(find("m")).read_bytes() == PAYLOAD  # a chunked body marks its own end


# --- (b) no size from anywhere -------------------------------------------------------------


def test_no_size_anywhere_and_a_closed_connection_is_refused_until_pinned(site, models,
                                                                          tmp_path):
    catalog(tmp_path, url=site.url + "/m.gguf")
    site.files["/m.gguf"] = Served(PAYLOAD, length=False)  # whole, but nothing says so
    with pytest.raises(BreezeError) as excinfo:
        pull(find("m"))
    assert code_and_recoverable(excinfo) == ("E500", False)
    message = excinfo.value.error.message
    assert "closed the connection" in message and "`size` or `sha256`" in message
    assert not (models / "m.gguf").exists()
    assert (models / "m.gguf.part").read_bytes() == PAYLOAD  # kept for when it can be checked

    catalog(tmp_path, url=site.url + "/m.gguf", size=SIZE)
    requests = len(site.requests)
    assert pull(find("m")).read_bytes() == PAYLOAD
    assert len(site.requests) == requests  # the kept bytes were enough


def test_hugging_face_linked_etag_and_size_verify_a_download(site, models, tmp_path):
    catalog(tmp_path, repo="test/Repo")
    hugging_face(site, Served(PAYLOAD, length=False))
    path = pull(find("m"))
    assert path.read_bytes() == PAYLOAD
    assert [p for p, _ in site.requests] == [HF_PATH, CDN_PATH]
    assert (models / "m.gguf.sha256").read_text().startswith(f"{SHA256}  m.gguf\n")

    hugging_face(site, Served(CORRUPT, length=False))
    with pytest.raises(BreezeError, match="checksum mismatch") as excinfo:
        pull(find("m"), force=True)
    assert code_and_recoverable(excinfo) == ("E500", False)
    assert "X-Linked-Etag" in excinfo.value.error.message
    assert sorted(p.name for p in models.iterdir()) == []


def test_a_linked_etag_other_than_the_catalogs_is_refused_before_downloading(site, models,
                                                                             tmp_path):
    catalog(tmp_path, repo="test/Repo", sha256="0" * 64)
    hugging_face(site, Served(PAYLOAD))
    with pytest.raises(BreezeError, match="checksum mismatch") as excinfo:
        pull(find("m"))
    assert code_and_recoverable(excinfo) == ("E500", False)
    assert SHA256 in excinfo.value.error.message and "0" * 64 in excinfo.value.error.message
    assert not (models / "m.gguf").exists() and not (models / "m.gguf.part").exists()


def test_a_gguf_that_is_not_gguf_is_refused_and_deleted(site, models, tmp_path):
    catalog(tmp_path, url=site.url + "/m.gguf")
    site.files["/m.gguf"] = Served(b"<!DOCTYPE html><p>Please log in</p>" * 50)
    with pytest.raises(BreezeError, match="not a GGUF file") as excinfo:
        pull(find("m"))
    assert code_and_recoverable(excinfo) == ("E500", False)
    assert "<!DOC" in excinfo.value.error.message
    assert sorted(p.name for p in models.iterdir()) == []


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as bundle:
        for name, data in files.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


MEMBERS = {"vosk-x/am/final.mdl": os.urandom(50_000), "vosk-x/conf/model.conf": b"--a=1\n"}


def test_a_zip_with_a_bad_crc_is_refused_before_unpacking(site, models, tmp_path):
    archive = bytearray(zipped(MEMBERS))
    data = MEMBERS["vosk-x/am/final.mdl"]
    at = bytes(archive).index(data[:64]) + 5000
    archive[at] ^= 0xFF  # the size is right; only the CRC can tell
    catalog(tmp_path, url=site.url + "/vosk-x.zip")
    site.files["/vosk-x.zip"] = Served(bytes(archive))
    with pytest.raises(BreezeError, match="zip integrity test") as excinfo:
        pull(find("m"))
    assert code_and_recoverable(excinfo) == ("E500", False)
    assert "vosk-x/am/final.mdl" in excinfo.value.error.message
    assert sorted(p.name for p in models.iterdir()) == []  # no directory, staging or zip


def test_a_whole_zip_needs_no_announced_size(site, models, tmp_path):
    catalog(tmp_path, url=site.url + "/vosk-x.zip")
    site.files["/vosk-x.zip"] = Served(zipped(MEMBERS), length=False)
    path = pull(find("m"))
    assert path == models / "vosk-x"
    assert (path / "am" / "final.mdl").read_bytes() == MEMBERS["vosk-x/am/final.mdl"]


def test_a_cut_zip_without_any_size_is_not_unpacked(site, models, tmp_path):
    catalog(tmp_path, url=site.url + "/vosk-x.zip")
    site.files["/vosk-x.zip"] = Served(zipped(MEMBERS), length=False, cut_after=30_000)
    with pytest.raises(BreezeError, match="not a valid zip archive") as excinfo:
        pull(find("m"))
    assert excinfo.value.error.code == "E500"
    assert not (models / "vosk-x").exists()


# --- (c) the .sha256 record is read back ----------------------------------------------------


def damage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[5000] ^= 0xFF
    path.write_bytes(bytes(data))


def test_the_record_is_sha256sum_format(site, models, tmp_path):
    catalog(tmp_path, url=site.url + "/m.gguf")
    site.files["/m.gguf"] = Served(PAYLOAD)
    pull(find("m"))
    check = subprocess.run(["sha256sum", "-c", "--strict", "m.gguf.sha256"], cwd=models,
                           capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout == "m.gguf: OK\n"
    damage(models / "m.gguf")
    check = subprocess.run(["sha256sum", "-c", "m.gguf.sha256"], cwd=models,
                           capture_output=True, text=True)
    assert check.returncode == 1


def test_pull_rehashes_an_unpinned_model_against_its_record(site, models, tmp_path):
    catalog(tmp_path, url=site.url + "/m.gguf")
    site.files["/m.gguf"] = Served(PAYLOAD)
    path = pull(find("m"))
    assert pull(find("m")) == path and len(site.requests) == 1  # intact: not fetched again
    damage(path)
    assert pull(find("m")).read_bytes() == PAYLOAD
    assert len(site.requests) == 2
    assert (models / "m.gguf.sha256").read_text() == f"{SHA256}  m.gguf\n"


def test_list_flags_a_pinned_model_of_the_wrong_size_and_pull_replaces_it(site, models,
                                                                          tmp_path):
    catalog(tmp_path, url=site.url + "/m.gguf", size=SIZE, sha256=SHA256)
    site.files["/m.gguf"] = Served(PAYLOAD)
    path = pull(find("m"))
    (row,) = statuses()
    assert row.present and not row.corrupt and row.problem == ""
    with path.open("r+b") as handle:
        handle.truncate(SIZE // 3)
    (row,) = statuses()
    assert row.present and row.corrupt
    assert str(SIZE // 3) in row.problem and str(SIZE) in row.problem
    result = CliRunner().invoke(load_cli().app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["corrupt"] is True

    assert pull(find("m")).read_bytes() == PAYLOAD and len(site.requests) == 2
    (row,) = statuses()
    assert not row.corrupt
    damage(path)  # same size: only a hash can tell, and `pull` hashes
    assert pull(find("m")).read_bytes() == PAYLOAD and len(site.requests) == 3
    assert not (models / "m.gguf.sha256").exists()  # the catalog is the record


def test_an_unpacked_archive_records_its_size_and_list_sees_a_missing_file(site, models,
                                                                           tmp_path):
    catalog(tmp_path, url=site.url + "/vosk-x.zip")
    site.files["/vosk-x.zip"] = Served(zipped(MEMBERS))
    path = pull(find("m"))
    record = (models / "vosk-x.zip.sha256").read_text().splitlines()
    unpacked = sum(len(data) for data in MEMBERS.values())
    assert record[1:] == [f"# unpacked {unpacked} bytes"]
    assert not statuses()[0].corrupt
    (path / "am" / "final.mdl").unlink()
    (row,) = statuses()
    assert row.corrupt and str(unpacked) in row.problem
    assert (pull(find("m")) / "am" / "final.mdl").is_file()
    assert len(site.requests) == 2 and not statuses()[0].corrupt
