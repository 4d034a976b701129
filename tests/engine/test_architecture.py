"""The engine stays free of UI and model libraries; the error table has one source."""

from __future__ import annotations

import ast
from pathlib import Path

from breeze.engine.errors import ERROR_CODES, errors_markdown

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"textual", "rich", "llama_cpp", "vosk", "pyttsx3", "sounddevice", "pocketsphinx",
             "openai", "typer", "sklearn", "profanity_check"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_engine_imports_no_ui_or_model_library():
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_modules(path) & FORBIDDEN)
        for path in (ROOT / "engine").rglob("*.py")
        if imported_modules(path) & FORBIDDEN
    }
    assert offenders == {}


def test_the_check_itself_sees_imports(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import textual.app\nfrom llama_cpp import Llama\n")
    assert imported_modules(bad) & FORBIDDEN == {"textual", "llama_cpp"}


def test_error_docs_are_generated_from_the_table():
    assert (ROOT / "docs" / "errors.md").read_text() == errors_markdown()
    for code in ("E101", "E102", "E400", "E404", "E405", "E406", "E500", "E501", "E502",
                 "E503", "E504", "G100"):
        assert code in ERROR_CODES
