"""`breeze`: the command line, also the scripting surface (see DESIGN.md)."""

from __future__ import annotations

import gc
import importlib
import pkgutil

import typer

from breeze.engine import BreezeError, __version__

from ..config import load_app_config
from ..logs import setup_logging
from . import ask, doctor, models_cmd, runners_cmd
from ._output import fail

app = typer.Typer(
    name="breeze",
    help="Chat, dictate and listen to local AI models in your terminal.",
    no_args_is_help=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"breeze {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
    present: bool = typer.Option(
        False, "--present", help="Open the app on the presenter view: large captions for a "
        "room (F5 switches)."
    ),
) -> None:
    """With no command, open the chat app."""
    if ctx.invoked_subcommand is not None:
        for problem in load_app_config().problems:
            typer.echo(f"breeze: warning: {problem}", err=True)
    else:
        from breeze.tui.app import run_app

        try:
            run_app(present)
        except BreezeError as exc:  # the saved chats or the settings cannot be opened at all
            raise fail(exc.error.code, exc.error.message) from None


app.command("ask")(ask.ask)
app.command("runners")(runners_cmd.runners)
app.command("doctor")(doctor.doctor)
app.add_typer(models_cmd.app, name="models", help="List, download and remove models.")

# Further commands live in `cmd_<name>.py` modules with a `register(app)` function.
for _module in pkgutil.iter_modules(__path__):
    if _module.name.startswith("cmd_"):
        importlib.import_module(f"{__name__}.{_module.name}").register(app)


def main() -> None:
    setup_logging()
    try:
        app()
    finally:
        # native models (CTranslate2, onnxruntime) still held in reference cycles are freed
        # now: freed while the interpreter shuts down, they can abort the process
        gc.collect()
