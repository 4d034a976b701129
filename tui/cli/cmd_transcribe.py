"""`breeze transcribe FILE`: speech to text from a WAV file; and the transcript printing that
`breeze dictate` shares."""

from __future__ import annotations

import asyncio
import shutil
import sys
from typing import Any, TextIO

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from breeze.engine import Capability, Engine, InferenceRequest, InferenceResult
from breeze.engine.audio import read_wav
from breeze.engine.errors import BreezeError
from breeze.engine.models import DownloadHooks

from ._asr_options import (
    JsonOption,
    LanguageOption,
    ModelOption,
    ParamOption,
    RunnerOption,
    WordsOption,
    asr_params,
)
from ._engine import cancel_on_sigint, make_engine
from ._output import exit_for, fail, print_json


class TranscriptPrinter:
    """Finalized utterances as lines (with their words under them when asked); on a terminal
    the utterance in progress is drawn on the line below and rewritten in place."""

    def __init__(self, out: TextIO, *, words: bool) -> None:
        self.out = out
        self.live = out.isatty()
        self.words = words
        self.committed = 0
        self.drawn = False

    def show(self, result: InferenceResult) -> None:
        meta = result.metadata
        if not result.partial:
            self._finish(result)
        elif meta.get("is_final"):
            self._commit(str(result.outputs.get("segment", "")), meta.get("words") or [])
        elif self.live and "segment" in result.outputs:
            self._draw(str(result.outputs["segment"]))

    def _finish(self, terminal: InferenceResult) -> None:
        """Utterances finalized by the end of the stream are only in the terminal result."""
        all_words = terminal.metadata.get("words") or []
        for segment in (terminal.metadata.get("segments") or [])[self.committed :]:
            start, end = segment.get("start"), segment.get("end")
            inside = [w for w in all_words if start is not None and start <= w["start"] <= end]
            self._commit(str(segment["text"]), inside)
        self._clear()

    def _commit(self, text: str, words: list[dict[str, Any]]) -> None:
        self._clear()
        self.out.write(text + "\n")
        if self.words:
            for word in words:
                conf = "  -  " if word.get("conf") is None else f"{word['conf']:.2f}"
                self.out.write(f"  {word['start']:7.2f} {word['end']:7.2f}  {conf}  "
                               f"{word['word']}\n")
        self.out.flush()
        self.committed += 1

    def _draw(self, text: str) -> None:
        width = max(10, shutil.get_terminal_size().columns - 1)
        self.out.write("\r\x1b[K" + text[-width:])
        self.out.flush()
        self.drawn = bool(text)

    def _clear(self) -> None:
        if self.drawn:
            self.out.write("\r\x1b[K")
            self.drawn = False


class DownloadBar:
    """A progress bar on stderr for a model that a runner downloads while loading (shown only
    when a download happens); its token stops the download when the request is cancelled."""

    def __init__(self) -> None:
        self.hooks = DownloadHooks(progress=self.update)
        self._bar: Progress | None = None
        self._task: Any = None

    def update(self, done: int, total: int | None) -> None:
        if self._bar is None:
            self._bar = Progress(
                TextColumn("downloading the speech model"), BarColumn(), DownloadColumn(),
                TransferSpeedColumn(), console=Console(stderr=True), transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("model", total=total)
        self._bar.update(self._task, completed=done, total=total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def attach_downloads(engine: Engine, hooks: DownloadHooks) -> None:
    for entry in engine.registry.entries():
        if Capability.ASR in entry.capabilities and hasattr(entry.runner, "downloads"):
            entry.runner.downloads = hooks  # type: ignore[attr-defined]


async def run_asr(
    request: InferenceRequest, runner: str | None, *, json_: bool, words: bool
) -> InferenceResult:
    """Stream an ASR request to stdout; Ctrl+C ends it (the terminal result keeps the text)."""
    engine = make_engine()
    bar = DownloadBar()
    attach_downloads(engine, bar.hooks)
    handle = engine.submit(request, runner=runner)
    bar.hooks.token = handle.token
    undo = cancel_on_sigint(handle)
    printer = TranscriptPrinter(sys.stdout, words=words)
    announced = False
    try:
        async for result in handle:
            bar.close()
            if not announced and result.metadata.get("input") == "microphone":
                _listening(result)
                announced = True
            if json_:
                print_json(result)
            else:
                printer.show(result)
    finally:
        undo()
        bar.close()
        await engine.aclose()
    assert handle.terminal is not None
    return handle.terminal


def _listening(result: InferenceResult) -> None:
    """On a terminal: which microphone and runner are listening."""
    if not sys.stderr.isatty():
        return
    m = result.metadata
    parts = [f"listening on {m.get('device')}", str(m.get("runner_name", "")),
             str(m.get("model_name") or "")]
    if m.get("fallback_from"):
        parts.append(f"fallback from {', '.join(m['fallback_from'])}")
    Console(stderr=True).print(" · ".join(p for p in parts if p) + " · Ctrl+C stops", style="dim")


def transcribe(
    file: str = typer.Argument(
        ..., metavar="FILE", help="A WAV file: any rate, sample width and channels."
    ),
    json_: JsonOption = False,
    words: WordsOption = False,
    runner: RunnerOption = None,
    model: ModelOption = None,
    language: LanguageOption = None,
    param: ParamOption = [],  # noqa: B006 (only read)
) -> None:
    """Transcribe a WAV file, printing each utterance as it is recognized."""
    try:
        pcm = read_wav(file)
    except BreezeError as exc:
        raise fail(exc.error.code, exc.error.message) from None
    params = asr_params(param, model, language, words)
    params.setdefault("sample_rate", pcm.sample_rate)  # -p sample_rate=N overrides the header
    request = InferenceRequest({"audio": pcm.data}, params)
    terminal = asyncio.run(run_asr(request, runner, json_=json_, words=words))
    exit_for(terminal)
    if terminal.metadata.get("finish_reason") == "cancelled":
        raise typer.Exit(130)


def register(app: typer.Typer) -> None:
    app.command("transcribe")(transcribe)
