"""`breeze ask PROMPT`: stream a reply to stdout."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from breeze.engine import BreezeError, Engine, InferenceRequest, InferenceResult
from breeze.runners._remote_config import remote_params, retry_policy

from ..config import engine_settings, load_app_config
from ._engine import cancel_on_sigint, make_engine, parse_params, runner_for_voice
from ._output import exit_for, exit_with, fail, json_errors, print_json, read_stdin

if TYPE_CHECKING:
    from breeze.engine.speech import SpeechDone
    from breeze.runners.audio_out import Player


def ask(
    prompt: str = typer.Argument(..., help="The question; '-' reads it from stdin."),
    system: str | None = typer.Option(None, "--system", help="System prompt."),
    model: str | None = typer.Option(None, "--model", help="Catalog id or GGUF path."),
    runner: str | None = typer.Option(None, "--runner", help="Runner name (breeze runners)."),
    param: list[str] = typer.Option([], "-p", "--param", help="Parameter key=value (repeat)."),  # noqa: B008
    json_: bool = typer.Option(False, "--json", help="One JSON result a line.",
                                callback=json_errors),
    no_stream: bool = typer.Option(False, "--no-stream", help="Print only the whole reply."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible server."),
    profile: str | None = typer.Option(None, "--profile", help="Remote profile (breeze remote)."),
    api_key_env: str | None = typer.Option(
        None, "--api-key-env", help="Environment variable holding the remote API key."
    ),
    speak: bool = typer.Option(False, "--speak", help="Speak the reply as it is written."),
    voice: str | None = typer.Option(None, "--voice", help="Voice for --speak (breeze say)."),
    device: str | None = typer.Option(None, "--device", help="Speaker for --speak."),
) -> None:
    """Ask the LLM and stream its reply."""
    if prompt == "-":
        prompt = read_stdin()
    params = parse_params(param)
    if system is not None:
        params["system_prompt"] = system
    if model is not None:
        params["model"] = model
    remote = remote_params(base_url, profile, api_key_env)
    if remote:  # a remote server named on the command line: the openai runner serves
        runner = runner or "openai"
        params.update(remote)
    request = InferenceRequest({"text": prompt}, params)
    overrides = {"retry": retry_policy(profile)} if runner == "openai" else {}
    settings = engine_settings(load_app_config(), **overrides)
    if speak:
        player = _open_speaker(device)
        if player is not None:
            _speak(make_engine(settings), request, runner, json_, voice, player)
            return
    terminal = asyncio.run(_stream(make_engine(settings), request, runner, json_, no_stream))
    cancelled = terminal.metadata.get("finish_reason") == "cancelled"
    exit_for(terminal)
    if cancelled:
        raise typer.Exit(130)


async def _stream(
    engine: Engine, request: InferenceRequest, runner: str | None, json_: bool, no_stream: bool
) -> InferenceResult:
    handle = engine.submit(request, runner=runner)
    undo = cancel_on_sigint(handle)
    shown = 0
    try:
        async for result in handle:
            if json_:
                print_json(result)
            elif not no_stream or not result.partial:
                text = result.text
                sys.stdout.write(text[shown:])
                sys.stdout.flush()
                shown = len(text)
    finally:
        undo()
        await engine.aclose()
    terminal = handle.terminal
    assert terminal is not None
    if not json_:
        if shown:
            sys.stdout.write("\n")
        _status(terminal)
    return terminal


def _status(result: InferenceResult) -> None:
    """A dim line on stderr (a terminal only) with how the reply ended."""
    if not sys.stderr.isatty() or result.error is not None:
        return
    m = result.metadata
    parts = [str(m.get("runner_name", "")), str(m.get("model_name") or "")]
    if m.get("ttft_ms") is not None:
        parts.append(f"TTFT {m['ttft_ms']:.0f} ms")
    if m.get("tokens_per_second"):
        parts.append(f"{m['tokens_per_second']:.1f} tok/s")
    parts.append(str(m.get("finish_reason", "")))
    Console(stderr=True).print(" · ".join(p for p in parts if p), style="dim")


def _open_speaker(device: str | None) -> Player | None:
    """The speaker for --speak; None (and a warning: the reply is still printed) when
    there is none."""
    from breeze.runners.audio_out import Player

    try:
        return Player(int(device) if device and device.isdigit() else device).open()
    except BreezeError as exc:
        sys.stderr.write(f"breeze: warning: the reply is printed, not spoken: {exc.error}\n")
        return None


def _speak(
    engine: Engine,
    request: InferenceRequest,
    runner: str | None,
    json_: bool,
    voice: str | None,
    player: Player,
) -> None:
    """Stream the reply and speak it sentence by sentence as it is written."""
    from breeze.engine.speech import ReplyText, SpeechSettings, speak_reply

    tts_runner = runner_for_voice(engine, voice) if voice else None
    settings = SpeechSettings(tts_params={"voice": voice} if voice else {},
                              tts_runner=tts_runner, llm_runner=runner)

    async def run() -> SpeechDone:
        speech = speak_reply(engine, request, player, settings)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, speech.cancel, "interrupted (Ctrl+C)")
        try:
            async for event in speech:
                if isinstance(event, ReplyText):
                    if json_:
                        if event.result.partial:  # the terminal result is printed at the end
                            print_json(event.result)
                    else:
                        sys.stdout.write(event.delta)
                        sys.stdout.flush()
        finally:
            loop.remove_signal_handler(signal.SIGINT)
            await engine.aclose()
        assert speech.done is not None  # the loop ends with SpeechDone
        return speech.done

    try:
        done = asyncio.run(run())
    finally:
        player.close()
    if not json_:
        sys.stdout.write("\n")
    if json_ and done.reply is not None:
        print_json(done.reply)
    if done.error is not None:  # with --json, the reply's own result may carry it already
        reported = json_ and done.reply is not None and done.reply.error is not None
        raise (exit_with if reported else fail)(done.error.code, done.error.message)
    if done.finish_reason == "cancelled":
        raise typer.Exit(130)
