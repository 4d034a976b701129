"""Output shared by every command: the --json line format and error exits."""

from __future__ import annotations

import sys

import typer

from engine import InferenceResult, result_to_json


def print_json(result: InferenceResult) -> None:
    sys.stdout.write(result_to_json(result) + "\n")
    sys.stdout.flush()


def fail(code: str, message: str, status: int = 1) -> typer.Exit:
    """Print `CODE: message` on stderr; the caller raises the returned Exit."""
    sys.stderr.write(f"{code}: {message}\n")
    return typer.Exit(status)


def exit_for(result: InferenceResult) -> None:
    """Exit non-zero with the code on stderr when the terminal result is an error."""
    if result.error is not None:
        raise fail(result.error.code, result.error.message)
