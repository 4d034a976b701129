"""`breeze models list|pull|rm|path`: the model catalog from the command line."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Column, Table

from breeze.engine.cancel import CancelToken
from breeze.engine.errors import BreezeError
from breeze.engine.models import find, model_status, pull, remove, resolve, statuses

log = logging.getLogger("breeze.models")

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode=None)


def _fail(error: BreezeError) -> typer.Exit:
    """Print "CODE: message" on stderr; the caller raises the returned Exit(1)."""
    typer.echo(f"{error.error.code}: {error.error.message}", err=True)
    return typer.Exit(1)


def _size(size: int) -> str:
    if not size:
        return "?"
    if size < 1_000_000:
        return f"{size / 1000:.0f} KB"
    return f"{size / 1e6:.0f} MB" if size < 1e9 else f"{size / 1e9:.2f} GB"


@app.command("list")
def list_models(
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List the catalog's models and whether each is present on this machine."""
    try:
        rows = statuses()
    except BreezeError as error:
        raise _fail(error) from None
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row.to_dict(), ensure_ascii=False))
        return
    names = [f"{row.id} (default)" if row.default else row.id for row in rows]
    # ids are what `pull` and `--model` take: never cut, not even in a pipe (80 columns)
    id_column = Column("id", no_wrap=True, min_width=max(map(len, names), default=2))
    table = Table(id_column, "capability", "source", "size", "present",
                  Column("license", no_wrap=True), title="Models")
    for name, row in zip(names, rows, strict=True):
        present = "corrupt" if row.corrupt else "yes" if row.present else "no"
        table.add_row(name, row.capability, row.source, _size(row.size), present, row.license)
    console = Console()
    if not console.is_terminal:  # a pipe or a file: as wide as the table needs
        console = Console(width=160)
    console.print(table)


@app.command("pull")
def pull_model(
    model_id: str = typer.Argument(..., metavar="ID", help="A model id from `breeze models list`."),
    force: bool = typer.Option(False, "--force", help="Download again even when present."),
) -> None:
    """Download (or assemble) a model; Ctrl+C stops and a later pull resumes."""
    try:
        entry = find(model_id)
    except BreezeError as error:
        raise _fail(error) from None
    status = model_status(entry)
    if status.corrupt:
        typer.echo(f"{entry.id} is corrupt ({status.problem}): downloading it again", err=True)
    token = CancelToken()
    outcome: list[Path | BreezeError] = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(entry.id, total=entry.size or None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        def work() -> None:
            try:
                outcome.append(pull(entry, progress, token, force=force))
            except BreezeError as error:
                outcome.append(error)
            except Exception as exc:  # a bug or an OS error: say what it was
                log.exception("pull %s failed", entry.id)
                outcome.append(BreezeError("E500", f"{type(exc).__name__}: {exc}"))

        worker = threading.Thread(target=work, name=f"pull-{entry.id}", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(0.1)
        except KeyboardInterrupt:
            token.cancel("interrupted")
            try:
                worker.join()
            except KeyboardInterrupt:  # pressed again while the download winds down
                pass
    result = outcome[0] if outcome else BreezeError("E500", "download stopped", True)

    if isinstance(result, BreezeError):
        if token.cancelled:
            typer.echo(f"cancelled: run `breeze models pull {entry.id}` to resume", err=True)
            raise typer.Exit(130)
        raise _fail(result)
    typer.echo(str(result))


@app.command("rm")
def remove_model(model_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Delete a downloaded or assembled model."""
    try:
        removed = remove(find(model_id))
    except BreezeError as error:
        raise _fail(error) from None
    typer.echo(f"removed {model_id}" if removed else f"{model_id} is not downloaded")


@app.command("path")
def model_path(
    model: str = typer.Argument(..., metavar="ID_OR_PATH"),
) -> None:
    """Print where a model's file is (assembling a package model on first use)."""
    try:
        path = resolve(model, capability=None)
    except BreezeError as error:
        raise _fail(error) from None
    typer.echo(str(path))
