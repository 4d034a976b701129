"""Output shared by every command: the --json line format and error exits."""

from __future__ import annotations

import sys

import typer

from breeze.engine import InferenceResult, RunnerError, result_to_json

_json_errors = False


def print_json(result: InferenceResult) -> None:
    sys.stdout.write(result_to_json(result) + "\n")
    sys.stdout.flush()


def json_errors(enabled: bool) -> bool:
    """The callback of a command's --json option: from then on an error found before any
    result (a bad option, an unreadable file) is also a JSON line on stdout."""
    global _json_errors
    _json_errors = enabled
    return enabled


def fail(code: str, message: str, status: int = 1) -> typer.Exit:
    """Print `CODE: message` on stderr (and, with --json, the error result on stdout); the
    caller raises the returned Exit."""
    if _json_errors:
        print_json(InferenceResult.failure(RunnerError.of(code, message)))
    return exit_with(code, message, status)


def exit_with(code: str, message: str, status: int = 1) -> typer.Exit:
    """`CODE: message` on stderr only: for a verdict the results (--json) already carry."""
    sys.stderr.write(f"{code}: {message}\n")
    return typer.Exit(status)


def read_stdin() -> str:
    """All of stdin, which must be UTF-8 text (E400 names the first bad byte otherwise)."""
    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fail("E400", f"stdin is not UTF-8 text: byte {exc.start} is "
                           f"0x{data[exc.start]:02x} ({exc.reason})") from None


def exit_for(result: InferenceResult) -> None:
    """Exit non-zero with the code on stderr when the terminal result is an error (with
    --json, the command printed that result already)."""
    if result.error is not None:
        raise exit_with(result.error.code, result.error.message)
