"""The package as a user installs it (pipx, uv tool, pip without -e): a wheel built from the
project, installed into a fresh virtualenv outside the checkout, with fresh XDG dirs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import wave
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "assets", "engine", "runners", "tui")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel of a copy of the project's files (a build leaves nothing in the checkout)."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
                    str(source)], check=True, timeout=600)
    (built,) = out.glob("breeze_tui-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The bin directory of a fresh venv with only the wheel and its dependencies."""
    home = tmp_path_factory.mktemp("venv")
    venv.create(home, with_pip=True)
    subprocess.run([str(home / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
                   check=True, timeout=1200)
    return home / "bin"


def test_the_wheel_installs_only_the_breeze_namespace(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.startswith("breeze_tui-")}
    assert top == {"breeze"}
    assert "breeze/assets/models.toml" in names and "breeze/tui/app.tcss" in names
    assert not any(name.startswith("breeze/__init__") for name in names)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    for field in ("Classifier: ", "Project-URL: ", "Keywords: ", "License-File: LICENSE"):
        assert field in text


def test_the_installed_command_works_on_its_own(installed, tmp_path, env):
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{installed}:{env['PATH']}"
    env["VIRTUAL_ENV"] = str(installed.parent)
    for var in ("BREEZE_CATALOG", "BREEZE_CONFIG_DIR", "BREEZE_MODELS_DIR"):
        env.pop(var, None)

    def breeze(*args: str) -> str:
        done = subprocess.run([str(installed / "breeze"), *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"breeze {' '.join(args)}: {done.stderr}"
        assert "Traceback" not in done.stderr
        return done.stdout

    where = subprocess.run([str(installed / "python"), "-c",
                            "import breeze.engine; print(breeze.engine.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(installed.parent)), "imported from outside the venv"

    assert breeze("--version").startswith("breeze ")
    assert "smollm2" in breeze("models", "list")
    assert "llama_cpp" in breeze("runners")
    answer = breeze("ask", "-p", "temperature=0", "What is the capital of France?")
    assert "Paris" in answer
    breeze("say", "--out", "x.wav", "Hello.")
    with wave.open(str(tmp_path / "x.wav")) as wav:
        assert wav.getnframes() > wav.getframerate() * 0.2
