"""`breeze talk`: a hands-free spoken conversation until Ctrl+C (or --turns / --seconds)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import typer

from breeze.engine import BreezeError, Engine
from breeze.engine.talk import (
    EchoIgnored,
    Heard,
    Interrupted,
    Problem,
    Replying,
    StateChanged,
    TalkEnded,
    TalkEvent,
    TurnDone,
    event_to_dict,
)

from ..config import AppConfig, engine_settings, load_app_config
from ..talking import TalkOptions, open_talk
from ._engine import make_engine, parse_params, runner_for_voice
from ._output import exit_with, fail, json_errors


def talk(
    microphone: str | None = typer.Option(None, "--microphone",
                                          help="Input device name or index (default: the "
                                               "settings', else the system's)."),
    speaker: str | None = typer.Option(None, "--speaker", help="Output device name or index."),
    model: str | None = typer.Option(None, "--model", help="Catalog id or GGUF path."),
    runner: str | None = typer.Option(None, "--runner", help="LLM runner (breeze runners)."),
    voice: str | None = typer.Option(None, "--voice", help="Voice of the replies (breeze say)."),
    system: str | None = typer.Option(None, "--system", help="System prompt."),
    param: list[str] = typer.Option([], "-p", "--param", help="LLM parameter key=value."),  # noqa: B008
    pause_ms: int = typer.Option(600, "--pause-ms", min=200, max=5000,
                                 help="A pause this long ends your turn."),
    barge_in_ms: int = typer.Option(200, "--barge-in-ms", min=60, max=2000,
                                    help="Speech this long while Breeze speaks interrupts it."),
    no_echo_cancel: bool = typer.Option(False, "--no-echo-cancel",
                                        help="Hear the microphone as it is (with headphones)."),
    turns: int | None = typer.Option(None, "--turns", min=1,
                                     help="Stop after this many answered turns."),
    seconds: float | None = typer.Option(None, "--seconds", min=0.1,
                                         help="Stop after this many seconds."),
    json_: bool = typer.Option(False, "--json", help="One JSON event a line.",
                               callback=json_errors),
) -> None:
    """Talk with the model: speak, hear the reply, and cut in whenever you like."""
    params = parse_params(param)
    if model is not None:
        params["model"] = model
    config = load_app_config()
    engine = make_engine(engine_settings(config))
    options = TalkOptions(
        end_of_turn_ms=pause_ms, barge_in_ms=barge_in_ms, echo_cancel=not no_echo_cancel,
        microphone=microphone, speaker=speaker, llm_runner=runner, llm_params=params,
        voice=voice, tts_runner=runner_for_voice(engine, voice) if voice else None,
        system_prompt=system,
    )
    ended = asyncio.run(_converse(engine, config, options, json_, turns, seconds))
    if ended.error is not None:
        raise exit_with(ended.error.code, ended.error.message)


async def _converse(engine: Engine, config: AppConfig, options: TalkOptions, json_: bool,
                    turns: int | None, seconds: float | None) -> TalkEnded:
    try:
        session = await open_talk(engine, config, options)
    except BreezeError as exc:
        await engine.aclose()
        raise fail(exc.error.code, exc.error.message) from None
    talk = session.talk
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, talk.stop)
    timer = loop.call_later(seconds, talk.stop) if seconds else None
    show = _print_json if json_ else _Printer().show
    answered = 0
    ended = TalkEnded("stopped")
    try:
        async for event in talk:
            show(event)
            if isinstance(event, TurnDone) and event.finish_reason in ("stop", "length",
                                                                      "interrupted"):
                answered += 1
                if turns is not None and answered >= turns:
                    talk.stop()
            if isinstance(event, TalkEnded):
                ended = event
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        if timer is not None:
            timer.cancel()
        await session.aclose()
        await engine.aclose()
    return ended


def _print_json(event: TalkEvent) -> None:
    sys.stdout.write(json.dumps(event_to_dict(event), ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _note(text: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\x1b[2m{text}\x1b[0m\n")
    else:
        sys.stderr.write(text + "\n")
    sys.stderr.flush()


class _Printer:
    """The conversation as lines: 'you: …', 'breeze: …' streamed, then the turn's timings."""

    def __init__(self) -> None:
        self._replying = False
        self._listened = False

    def show(self, event: TalkEvent) -> None:
        if isinstance(event, Heard) and event.final:
            self._line(f"you: {event.text}")
        elif isinstance(event, Replying):
            if not self._replying:
                self._write("breeze: ")
                self._replying = True
            self._write(event.delta)
        elif isinstance(event, Interrupted):
            self._end_reply()
            if event.spoken:
                _note(f"(interrupted after: {event.spoken})")
        elif isinstance(event, TurnDone):
            self._end_reply()
            if event.metrics.first_audio_ms is not None:
                _note(event.metrics.line())
        elif isinstance(event, EchoIgnored):
            _note(f"(ignored my own voice: {event.text})")
        elif isinstance(event, Problem):
            self._end_reply()
            _note(f"{event.error.code}: {event.error.message}")
        elif isinstance(event, StateChanged) and event.state == "listening":
            self._end_reply()
            if not self._listened:  # the microphone delivers: words said now are heard
                self._listened = True
                _note("listening: speak, and cut in whenever you like (Ctrl+C stops)")

    def _end_reply(self) -> None:
        if self._replying:
            self._write("\n")
            self._replying = False

    def _line(self, text: str) -> None:
        self._end_reply()
        self._write(text + "\n")

    @staticmethod
    def _write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.command("talk")(talk)
