"""`breeze remote add|list|rm`: profiles of OpenAI-compatible servers (see docs/remote.md)."""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console
from rich.table import Table

from breeze.engine import BreezeError
from breeze.runners._remote_config import (
    RemoteProfile,
    default_profile_name,
    load_profiles,
    redact_url,
    remove_profile,
    save_profile,
)

from ._output import fail

remote = typer.Typer(no_args_is_help=True, rich_markup_mode=None)


@remote.command("add")
def add(
    name: str = typer.Argument(..., help="Profile name: letters, digits, - and _."),
    base_url: str = typer.Option(..., "--base-url", help="e.g. http://10.0.0.5:8000/v1"),
    model: str | None = typer.Option(None, "--model", help="Model name on the server."),
    api_key_env: str | None = typer.Option(
        None, "--api-key-env", help="Environment variable holding the API key (its name is kept)."
    ),
    api_key_stdin: bool = typer.Option(
        False, "--api-key-stdin", help="Read the API key from stdin and keep it (file mode 0600)."
    ),
    timeout: float | None = typer.Option(None, "--timeout", help="Seconds without an answer."),
    max_retries: int | None = typer.Option(None, "--max-retries", help="Retries, default 3."),
    default: bool = typer.Option(False, "--default", help="Use it when no profile is named."),
) -> None:
    """Add or replace a profile."""
    key = sys.stdin.readline().strip() if api_key_stdin else None
    if api_key_stdin and not key:
        raise fail("E400", "no API key on stdin")
    try:
        profile = RemoteProfile(name, base_url, model, key, api_key_env, timeout, max_retries)
        path = save_profile(profile, make_default=default)
    except BreezeError as exc:
        raise fail(exc.error.code, exc.error.message) from None
    typer.echo(f"saved profile {name!r} in {path}")


@remote.command("list")
def list_(json_: bool = typer.Option(False, "--json", help="One JSON object a line.")) -> None:
    """List the profiles (API keys are never shown)."""
    try:
        profiles, default = load_profiles(), default_profile_name()
    except BreezeError as exc:
        raise fail(exc.error.code, exc.error.message) from None
    rows = [_row(p, p.name == default) for p in profiles.values()]
    if json_:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    table = Table("profile", "base URL", "model", "API key", "default")
    for row in rows:
        table.add_row(row["name"], row["base_url"], row["model"] or "(first served)",
                      row["api_key"] or "-", "yes" if row["default"] else "")
    Console().print(table)


def _row(profile: RemoteProfile, default: bool) -> dict[str, object]:
    key = f"env:{profile.api_key_env}" if profile.api_key_env else None
    return {
        "name": profile.name,
        "base_url": redact_url(profile.base_url),
        "model": profile.model,
        "api_key": "stored" if profile.api_key else key,
        "timeout_s": profile.timeout_s,
        "max_retries": profile.max_retries,
        "default": default,
    }


@remote.command("rm")
def rm(name: str = typer.Argument(..., help="Profile name.")) -> None:
    """Remove a profile."""
    try:
        remove_profile(name)
    except BreezeError as exc:
        raise fail(exc.error.code, exc.error.message) from None
    typer.echo(f"removed profile {name!r}")


def register(app: typer.Typer) -> None:
    app.add_typer(remote, name="remote", help="OpenAI-compatible servers: add, list, rm.")
