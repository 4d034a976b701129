"""`breeze doctor`: what works on this machine, and the command that fixes what does not."""

from __future__ import annotations

import ctypes.util
import importlib.util
import json
import shutil
from dataclasses import asdict, dataclass

import typer
from rich.console import Console

from breeze.engine import BreezeError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def run_checks() -> list[Check]:
    checks = [
        _library("PortAudio (audio devices)", "portaudio", "sudo apt-get install libportaudio2"),
        _program("espeak-ng (speech)", "espeak-ng", "sudo apt-get install espeak-ng"),
        *_audio_devices(),
        _module("llama-cpp-python (LLM)", "llama_cpp", "pip install llama-cpp-python"),
    ]
    checks.extend(_models())
    checks.append(_speech_recognition())
    return checks


def _library(name: str, lib: str, fix: str) -> Check:
    found = ctypes.util.find_library(lib)
    return Check(name, bool(found), found or "not found", "" if found else fix)


def _program(name: str, program: str, fix: str) -> Check:
    found = shutil.which(program)
    return Check(name, bool(found), found or "not found", "" if found else fix)


def _module(name: str, module: str, fix: str) -> Check:
    ok = importlib.util.find_spec(module) is not None
    return Check(name, ok, "installed" if ok else "not installed", "" if ok else fix)


def _audio_devices() -> list[Check]:
    try:
        import sounddevice as sd

        devices = sd.query_devices()
    except Exception as exc:  # no PortAudio, or it failed to start
        return [Check("audio devices", False, str(exc), "sudo apt-get install libportaudio2")]
    inputs = [d["name"] for d in devices if d["max_input_channels"] > 0]
    outputs = [d["name"] for d in devices if d["max_output_channels"] > 0]
    fix = "connect a device, or start PulseAudio: pulseaudio --start"
    return [
        Check("microphone", bool(inputs), ", ".join(inputs[:3]) or "none", "" if inputs else fix),
        Check("speaker", bool(outputs), ", ".join(outputs[:3]) or "none", "" if outputs else fix),
    ]


def _models() -> list[Check]:
    from breeze.engine.models import load_catalog, local_path

    checks = []
    for entry in load_catalog():
        if not entry.default:
            continue
        path = local_path(entry)
        fix = "" if path else f"breeze models pull {entry.id}"
        checks.append(
            Check(f"default {entry.capability} model {entry.id}", bool(path), str(path or
                  "missing"), fix)
        )
    return checks


def _speech_recognition() -> Check:
    """Recognize half a second of silence in the dictation language, as dictation would:
    the runner and model that answer, or why none could (no download is started)."""
    import asyncio

    from ..config import load_app_config

    voice = load_app_config().voice
    language = voice.language or "en"
    return asyncio.run(_recognize_silence(f"speech recognition ({language})", language,
                                          voice.asr_runner or None))


async def _recognize_silence(name: str, language: str, runner: str | None) -> Check:
    from breeze.engine import Capability, InferenceRequest

    from ._engine import make_engine

    engine = make_engine()
    problems = []
    try:
        for entry in engine.registry.candidates(Capability.ASR, runner):
            params: dict[str, object] = {"language": language}
            if "download" in {spec.name for spec in entry.runner.param_schema()}:
                params["download"] = False
            request = InferenceRequest({"audio": bytes(16_000)}, params,
                                       capability=Capability.ASR)
            result = await engine.run(request, runner=entry.name)
            if result.ok:
                model = result.metadata.get("model_name") or "its model"
                return Check(name, True, f"{entry.name} with {model}")
            problems.append(f"{entry.name}: {result.error}")
    except BreezeError as exc:
        return Check(name, False, str(exc.error), "pick another runner in the settings (F2)")
    finally:
        await engine.aclose()
    fix = f"breeze models pull ID, with a model for {language!r} from breeze models list"
    return Check(name, False, "; ".join(problems) or "no speech recognition runner", fix)


def doctor(json_: bool = typer.Option(False, "--json", help="One JSON object a line.")) -> None:
    """Check audio, speech and model set-up."""
    checks = run_checks()
    if json_:
        for check in checks:
            typer.echo(json.dumps(asdict(check)))
    else:
        console = Console()
        for check in checks:
            mark = "[green]ok[/]" if check.ok else "[red]missing[/]"
            line = f"{mark}  {check.name}: {check.detail}"
            if check.fix:
                line += f"\n      fix: [bold]{check.fix}[/]"
            console.print(line, highlight=False)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)
