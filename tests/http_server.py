"""A real HTTP server on 127.0.0.1, in a thread, for the tests that download (model files,
vosk zips). The `http_server` fixture of tests/conftest.py starts them and stops them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handler = Callable[..., BaseHTTPRequestHandler]


class LocalHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: Handler) -> None:
        super().__init__(("127.0.0.1", 0), handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that went away (a cancelled download) is not the server's failure


@contextmanager
def serving(handler: Handler, **attributes: Any) -> Iterator[LocalHTTPServer]:
    """Serve with `handler` on a free port until the block ends; `attributes` are set on the
    server for the handler to read (`self.server.<name>`)."""
    httpd = LocalHTTPServer(handler)
    for name, value in attributes.items():
        setattr(httpd, name, value)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
