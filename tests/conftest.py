import sys
from pathlib import Path

# tests/ is a package; make the project root importable when running from anywhere.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import shutil  # noqa: E402
import subprocess  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def null_sink() -> dict[str, str]:
    """A PulseAudio null sink as the default speaker, its monitor as the default microphone.

    Needs the Debian packages pulseaudio, pulseaudio-utils and libasound2-plugins
    (`make test` installs them)."""
    script = Path(__file__).resolve().parent.parent / "scripts" / "null-sink.sh"
    assert shutil.which("pactl"), "pulseaudio-utils is not installed: run `make test`"
    subprocess.run([str(script)], check=True, timeout=30)
    return {"sink": "breeze_null", "monitor": "breeze_null.monitor"}
