"""`breeze guard TEXT`: run the guardian's checks alone on a text.

Exit status: 0 when the text is safe (warnings are printed but pass), 1 with "G100: ..."
on stderr when it is unsafe, 1 with the error's code when the check itself failed, and
130 when interrupted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import typer

from breeze.engine import Capability, InferenceRequest, InferenceResult

from ._engine import cancel_on_sigint, make_engine
from ._output import exit_for, exit_with, json_errors, print_json, read_stdin


def register(app: typer.Typer) -> None:
    app.command("guard")(guard)


def guard(
    text: str = typer.Argument(..., help="The text to check; '-' reads it from stdin."),
    json_: bool = typer.Option(False, "--json", help="One JSON result a line (each check).",
                                callback=json_errors),
    strictness: str = typer.Option("medium", "--strictness", help="low, medium or high."),
    check: list[str] = typer.Option(  # noqa: B008
        [], "--check", help="Only this check (repeat): offensive, personal_data, "
        "prompt_injection, llm_judge."
    ),
    judge_model: str | None = typer.Option(
        None, "--judge-model", help="Guard model (catalog id or GGUF) for the llm_judge check."
    ),
    runner: str | None = typer.Option(None, "--runner", help="Guardian runner name."),
) -> None:
    """Check a text for offensive language, personal data and prompt injection."""
    if text == "-":
        text = read_stdin()
    params: dict[str, Any] = {"strictness": strictness}
    if check:
        params["checks"] = check
    if judge_model:
        params["judge_model"] = judge_model
    request = InferenceRequest({"text": text}, params, capability=Capability.GUARDIAN)
    terminal = asyncio.run(_check(request, runner, json_))
    exit_for(terminal)
    if terminal.metadata.get("finish_reason") == "cancelled":
        raise typer.Exit(130)
    if not json_:
        _print_verdict(terminal)
    if terminal.outputs.get("safety_status") == "unsafe":
        raise exit_with("G100", f"unsafe: {_summary(terminal.metadata['detected_issues'])}")


async def _check(request: InferenceRequest, runner: str | None, json_: bool) -> InferenceResult:
    engine = make_engine()
    handle = engine.submit(request, runner=runner)
    undo = cancel_on_sigint(handle)
    try:
        async for result in handle:
            if json_:
                print_json(result)
    finally:
        undo()
        await engine.aclose()
    assert handle.terminal is not None
    return handle.terminal


def _print_verdict(terminal: InferenceResult) -> None:
    outputs, meta = terminal.outputs, terminal.metadata
    checks = ", ".join(f"{name}: {status}" for name, status in meta.get("checks", {}).items())
    print(f"{outputs['safety_status']} · risk {outputs['risk_score']:.2f} · {checks}")
    for issue in meta["detected_issues"]:
        start, end = issue["span"]
        print(f"  {issue['status']:<8} {issue['type']:<17} {start}-{end}  {issue['text_excerpt']}")


def _summary(issues: list[Mapping[str, Any]]) -> str:
    unsafe = dict.fromkeys(i["type"] for i in issues if i["status"] == "unsafe")
    return ", ".join(unsafe)
