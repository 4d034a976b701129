"""`breeze runners`: which runners exist and whether they can work here."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from breeze.runners import builtin_registry


def runners(json_: bool = typer.Option(False, "--json", help="One JSON object a line.")) -> None:
    """List the runners: capabilities, priority, availability."""
    infos = builtin_registry().infos()
    if json_:
        for info in infos:
            typer.echo(json.dumps(info.to_dict(), ensure_ascii=False))
        return
    table = Table("runner", "capabilities", "priority", "available", "model / why not")
    for info in infos:
        table.add_row(
            info.name,
            ", ".join(info.capabilities),
            str(info.priority),
            "yes" if info.available else "no",
            info.model or "" if info.available else info.reason,
        )
    Console().print(table)
