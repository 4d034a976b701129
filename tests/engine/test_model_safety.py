"""A catalog entry never makes Breeze write or delete anything outside the models directory.

The layout of every test: `home/` plays the user's home directory, `home/models/` is
BREEZE_MODELS_DIR with another model in it, and `home/keep.txt` is a sentinel beside it; all
three must survive whatever the catalog says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from breeze.engine.errors import BreezeError
from breeze.engine.models import ModelEntry, find, load_catalog, pull, remove
from tests.http_server import LocalHTTPServer

BREEZE = str(Path(sys.executable).with_name("breeze"))
BODY = b"GGUF" + bytes(1000)


class Handler(BaseHTTPRequestHandler):
    """Answers every GET with a small model file, and remembers what was asked."""

    server: LocalHTTPServer  # with `paths`

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


@dataclass
class Home:
    root: Path
    models: Path
    sentinel: Path
    other: Path
    catalog: Path
    server: LocalHTTPServer

    def intact(self) -> bool:
        return (
            self.sentinel.read_text() == "keep me"
            and self.other.read_bytes() == BODY
            and self.models.is_dir()
        )


@pytest.fixture
def home(http_server, tmp_path, monkeypatch) -> Home:
    root = tmp_path / "home"
    models = root / "models"
    models.mkdir(parents=True)
    sentinel = root / "keep.txt"
    sentinel.write_text("keep me")
    other = models / "other.gguf"
    other.write_bytes(BODY)
    catalog = tmp_path / "catalog.toml"
    monkeypatch.setenv("BREEZE_CATALOG", str(catalog))
    monkeypatch.setenv("BREEZE_MODELS_DIR", str(models))
    server = http_server(Handler, paths=[])
    return Home(root, models, sentinel, other, catalog, server)


def toml_entry(**fields: str) -> str:
    values = {"id": "evil", "name": "Evil", "capability": "LLM", **fields}
    return "[[model]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())


def code_of(excinfo: pytest.ExceptionInfo[BreezeError]) -> str:
    return excinfo.value.error.code


BASE = "http://127.0.0.1:9"
# name -> (the entry's fields, the field the error must name)
ESCAPING = {
    "file is '.'": ({"source": "url", "url": f"{BASE}/x.gguf", "file": "."}, "file"),
    "file is '..'": ({"source": "url", "url": f"{BASE}/x.gguf", "file": ".."}, "file"),
    "url ends in /..": ({"source": "url", "url": f"{BASE}/models/.."}, "url"),
    "url ends in /.": ({"source": "url", "url": f"{BASE}/models/."}, "url"),
    "url archive '..zip'": ({"source": "url", "url": f"{BASE}/..zip"}, "url"),
    "archive '.zip'": ({"source": "url", "url": f"{BASE}/x.zip", "file": ".zip"}, "file"),
    "archive '...zip'": ({"source": "url", "url": f"{BASE}/x.zip", "file": "...zip"}, "file"),
    "file with a slash": ({"source": "url", "url": f"{BASE}/x.gguf", "file": "a/x.gguf"},
                          "file"),
    "file with backslashes": (
        {"source": "url", "url": f"{BASE}/x.gguf", "file": "..\\..\\x.gguf"}, "file"),
    "file with a drive": ({"source": "url", "url": f"{BASE}/x.gguf", "file": "C:x.gguf"},
                          "file"),
    "file with a NUL": ({"source": "url", "url": f"{BASE}/x.gguf", "file": "x\x00.gguf"},
                        "file"),
    "hf file is '.'": ({"source": "huggingface", "repo": "o/r", "file": "."}, "file"),
    "hf file climbs": ({"source": "huggingface", "repo": "o/r", "file": "a/../../x.gguf"},
                       "file"),
    "hf file is absolute": ({"source": "huggingface", "repo": "o/r", "file": "/etc/x.gguf"},
                            "file"),
    "hf file ends in /..": ({"source": "huggingface", "repo": "o/r", "file": "a/.."}, "file"),
    "hf file is empty": ({"source": "huggingface", "repo": "o/r", "file": "sub/"}, "file"),
    "assembled into a folder": (
        {"source": "package", "package": "p", "assemble": "p:f", "file": "../x.gguf"}, "file"),
    "package file climbs": ({"source": "package", "package": "p", "file": "../../etc"}, "file"),
}


@pytest.mark.parametrize("case", sorted(ESCAPING))
def test_the_catalog_refuses_a_name_that_could_leave_the_models_dir(case, home):
    fields, field = ESCAPING[case]
    home.catalog.write_text(toml_entry(**fields))
    with pytest.raises(BreezeError) as excinfo:
        load_catalog()
    assert code_of(excinfo) == "E400"
    message = excinfo.value.error.message
    assert message.startswith(f"model catalog {home.catalog}: model 'evil': field '{field}'")


def test_plain_names_and_repository_folders_are_accepted(home):
    home.catalog.write_text(
        toml_entry(source="huggingface", repo="o/r", file="sub/dir/m-Q4.gguf")
        + toml_entry(id="zip", source="url", url=f"{BASE}/v/vosk-model-0.1.zip?download=1")
        + toml_entry(id="named", source="url", url=f"{BASE}/get?id=3", file="my model.gguf")
        + toml_entry(id="pkg", source="package", package="p", file="model/en-us")
    )
    entries = {entry.id: entry for entry in load_catalog()}
    assert entries["evil"].local_name == "m-Q4.gguf"
    assert entries["zip"].archive and entries["zip"].local_name == "vosk-model-0.1"
    assert entries["named"].local_name == "my model.gguf"
    assert entries["pkg"].in_package and entries["pkg"].file == "model/en-us"


# --- the reproductions, against a real server -------------------------------------------------


@pytest.mark.parametrize("how", ["file", "url"])
def test_pull_force_and_rm_of_an_escaping_catalog_entry_are_e400(how, home):
    base = home.server.url
    fields = {"source": "url", "url": f"{base}/models/.."}
    if how == "file":
        fields = {"source": "url", "url": f"{base}/x.gguf", "file": "."}
    home.catalog.write_text(toml_entry(**fields))
    for action in (lambda: pull(find("evil"), force=True), lambda: remove(find("evil"))):
        with pytest.raises(BreezeError) as excinfo:
            action()
        assert code_of(excinfo) == "E400" and "model 'evil'" in excinfo.value.error.message
    assert home.intact() and home.server.paths == []


def made_by_hand(home: Home, **fields: str) -> ModelEntry:
    """An entry that skipped catalog validation (built in Python, or a future code path)."""
    values = {"id": "evil", "name": "Evil", "capability": "LLM", "source": "url",
              "url": f"{home.server.url}/x.gguf", **fields}
    return ModelEntry(**values)


@pytest.mark.parametrize("file", [".", "..", "...zip", ".zip", "x.gguf/.."])
def test_download_refuses_any_path_outside_the_models_dir_even_unvalidated(file, home):
    entry = made_by_hand(home, file=file)
    for action in (lambda: pull(entry, force=True), lambda: pull(entry), lambda: remove(entry)):
        with pytest.raises(BreezeError, match="not inside the models directory") as excinfo:
            action()
        assert code_of(excinfo) == "E400"
    assert home.intact() and home.server.paths == []
    assert sorted(p.name for p in home.root.iterdir()) == ["keep.txt", "models"]


def test_a_model_dir_that_is_a_symlink_out_is_not_followed(home, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("mine")
    (home.models / "vosk-x").symlink_to(elsewhere, target_is_directory=True)
    entry = made_by_hand(home, url=f"{home.server.url}/vosk-x.zip", file="vosk-x.zip")
    assert entry.archive and entry.local_name == "vosk-x"
    for action in (lambda: pull(entry, force=True), lambda: remove(entry)):
        with pytest.raises(BreezeError, match="not inside the models directory") as excinfo:
            action()
        assert code_of(excinfo) == "E400"
    assert (elsewhere / "precious.txt").read_text() == "mine"
    assert home.intact()


# --- the same through the real `breeze` command -----------------------------------------------


def run_breeze(home: Home, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        env[var] = str(home.root.parent / "xdg" / var.lower())
    env["BREEZE_CATALOG"] = str(home.catalog)
    env["BREEZE_MODELS_DIR"] = str(home.models)
    return subprocess.run(
        [BREEZE, "models", *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.parametrize("command", [["pull", "evil", "--force"], ["rm", "evil"]])
@pytest.mark.parametrize("how", ["file", "url"])
def test_cli_refuses_an_escaping_catalog_entry(command, how, home):
    if how == "file":
        entry = toml_entry(source="url", url=f"{home.server.url}/x.gguf", file=".")
    else:
        entry = toml_entry(source="url", url=f"{home.server.url}/models/..")
    home.catalog.write_text(entry)
    result = run_breeze(home, *command)
    assert result.returncode == 1, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"E400: model catalog {home.catalog}: model 'evil': field '{how}'")
    assert "E500" not in result.stderr
    assert home.intact() and home.server.paths == []


def test_cli_rm_does_not_follow_a_symlink_out_of_the_models_dir(home, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("mine")
    (home.models / "vosk-x").symlink_to(elsewhere, target_is_directory=True)
    home.catalog.write_text(toml_entry(source="url", url=f"{home.server.url}/vosk-x.zip"))
    result = run_breeze(home, "rm", "evil")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("E400: refusing to")
    assert "not inside the models directory" in result.stderr
    assert (elsewhere / "precious.txt").read_text() == "mine" and home.intact()
