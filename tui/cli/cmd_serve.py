"""`breeze serve`: the chat app in a web browser, through textual-serve.

Each browser tab that opens the page starts a Breeze of its own on this machine, as this user:
it chats with this machine's models, uses its microphone and speaker, and reads and writes this
user's saved chats. There is no password and no encryption, so the server listens on the
loopback address only, unless `--public` says it is meant to be reached from elsewhere.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import shlex
import socket
import sys
from typing import TYPE_CHECKING

import typer

from ._output import fail

if TYPE_CHECKING:
    from aiohttp import web

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
PRESENT_FONT_SIZE = 32  # px, textual-serve's `fontsize`: the presenter view, read across a room

# The command each browser tab runs. A Ctrl+C in the terminal reaches the whole process group:
# the apps ignore it, and the server asks each one to quit as it stops.
_APP = ("import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "from breeze.tui.cli import main; main()")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    host: str = typer.Option(
        DEFAULT_HOST, "--host", help="Address to listen on. Any but a loopback address "
        "(127.0.0.1, ::1, localhost) needs --public."
    ),
    port: int = typer.Option(DEFAULT_PORT, "--port", min=1, max=65535, help="Port to listen on."),
    public: bool = typer.Option(
        False, "--public", help="Really listen on --host, reachable from other machines: anyone "
        "who reaches the port can use Breeze, its microphone and your saved chats."
    ),
    public_url: str | None = typer.Option(
        None, "--public-url", help="The address browsers use to reach this server (behind a "
        "proxy, say); by default http://HOST:PORT."
    ),
    present: bool = typer.Option(False, "--present",
                                 help="Open each page on the presenter view (F5 switches)."),
) -> None:
    """Serve the chat app to a web browser (Ctrl+C stops it)."""
    local = is_loopback(host)
    if not local and not public:
        raise fail("E400", f"--host {host} would let other machines reach Breeze, with no "
                           "password: your saved chats, models, microphone and speaker. "
                           "Add --public if that is what you mean.")
    from textual_serve.server import Server

    class _Server(Server):
        def initialize_logging(self) -> None:
            """Breeze's log file already takes the records (`setup_logging`)."""

        async def on_startup(self, app: web.Application) -> None:
            app.on_cleanup.append(_collect_app_processes)
            page = f"{self.public_url}/?fontsize={PRESENT_FONT_SIZE}" if present else \
                self.public_url
            typer.echo(f"Breeze is served at {page} (Ctrl+C stops it)")

    url = public_url or f"http://{_url_host(host)}:{port}"
    if not local:
        typer.echo(f"breeze: warning: listening on {host}:{port} for every machine that can "
                   f"reach it, with no password and no encryption. Whoever opens {url} chats "
                   "as you, with your saved chats, models, microphone and speaker.", err=True)
    command = [sys.executable, "-c", _APP, *(["--present"] if present else [])]
    server = _Server(shlex.join(command), host=host, port=port,
                     title="Breeze", public_url=url)
    # textual-serve runs on the current event loop; one made here keeps that explicit.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        server.serve()
    except OSError as exc:
        raise fail("E501", f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    typer.echo("Breeze stopped serving.")


async def _collect_app_processes(app: web.Application) -> None:
    """textual-serve leaves its app processes' pipes to the garbage collector: collected after
    the event loop has closed, each would print "Event loop is closed" on the way out."""
    gc.collect()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    """The host as a browser on another machine can use it in a URL."""
    if host in ("", "0.0.0.0", "::"):
        return socket.gethostname()
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
