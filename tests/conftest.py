import sys
from pathlib import Path

# tests/ is a package; make the project root importable when running from anywhere.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import shutil  # noqa: E402
import subprocess  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import ExitStack  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

from tests.http_server import Handler, LocalHTTPServer, serving  # noqa: E402


@pytest.fixture
def http_server() -> Iterator[Callable[..., LocalHTTPServer]]:
    """Start an HTTP server on 127.0.0.1: `http_server(handler, **attributes)` returns it
    serving on a free port; every server started is stopped after the test."""
    with ExitStack() as stack:

        def start(handler: Handler, **attributes: Any) -> LocalHTTPServer:
            return stack.enter_context(serving(handler, **attributes))

        yield start


@pytest.fixture(scope="session")
def null_sink() -> dict[str, str]:
    """A PulseAudio null sink as the default speaker, its monitor as the default microphone.

    Needs the Debian packages pulseaudio, pulseaudio-utils and libasound2-plugins
    (`make test` installs them)."""
    script = Path(__file__).resolve().parent.parent / "scripts" / "null-sink.sh"
    assert shutil.which("pactl"), "pulseaudio-utils is not installed: run `make test`"
    subprocess.run([str(script)], check=True, timeout=30)
    return {"sink": "breeze_null", "monitor": "breeze_null.monitor"}
