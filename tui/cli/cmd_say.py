"""`breeze say TEXT`: speak text with a progress bar, or write the speech to a WAV file."""

from __future__ import annotations

import asyncio
import json
import signal
import wave
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from breeze.engine import (
    BreezeError,
    Capability,
    Handle,
    InferenceRequest,
    InferenceResult,
)
from breeze.runners.audio_out import Player

from ._engine import make_engine, runner_for_voice
from ._output import exit_for, fail, json_errors, print_json, read_stdin


def register(app: typer.Typer) -> None:
    app.command("say")(say)


def say(
    text: str | None = typer.Argument(None, help="What to say; '-' reads it from stdin."),
    out: Path | None = typer.Option(None, "--out", help="Write a WAV file, do not play."),  # noqa: B008
    voice: str | None = typer.Option(
        None, "--voice", help="Voice id, name or language, of any runner (--list-voices)."),
    rate: int | None = typer.Option(None, "--rate", help="Words a minute (80-500)."),
    volume: float | None = typer.Option(None, "--volume", help="0 to 1."),
    device: str | None = typer.Option(None, "--device", help="Output device name or index."),
    runner: str | None = typer.Option(None, "--runner", help="Runner name (breeze runners)."),
    list_voices: bool = typer.Option(False, "--list-voices",
                                     help="List the voices of every runner and exit."),
    json_: bool = typer.Option(False, "--json", help="One JSON result a line.",
                                callback=json_errors),
) -> None:
    """Speak text aloud with a progress bar (Ctrl+C stops at once)."""
    if list_voices:
        return _list_voices(runner, json_)
    if text is None:
        raise fail("E400", "nothing to say: give TEXT, or '-' to read stdin")
    if text == "-":
        text = read_stdin()
    params = {k: v for k, v in {"voice": voice, "rate": rate, "volume": volume}.items()
              if v is not None}
    request = InferenceRequest({"text": text}, params, capability=Capability.TTS)
    try:
        sink: _Sink = _WavSink(out) if out else _PlayerSink(Player(device).open())
    except BreezeError as exc:  # no output device, or the file cannot be written
        raise fail(exc.error.code, exc.error.message) from None
    terminal, interrupted = asyncio.run(_say(request, runner, sink, json_))
    exit_for(terminal)
    if interrupted or terminal.metadata.get("finish_reason") == "cancelled":
        raise typer.Exit(130)


def _list_voices(runner_name: str | None, json_: bool) -> None:
    """The voices of the named runner, else of every available speech runner."""
    registry = make_engine().registry
    try:
        entries = registry.candidates(Capability.TTS, runner_name)
        if runner_name:
            support = entries[0].runner.is_supported()
            if not support:
                raise BreezeError("E501", f"runner {runner_name!r} is unavailable: "
                                          f"{support.reason}")
        voices = [v for entry in entries for v in _voices_of(entry.runner, bool(runner_name))]
    except BreezeError as exc:
        raise fail(exc.error.code, exc.error.message) from None
    if json_:
        for v in voices:
            typer.echo(json.dumps(v, ensure_ascii=False))
        return
    table = Table("id", "name", "languages", "runner", title="Voices")
    for v in voices:
        table.add_row(v["id"], v["name"], ", ".join(v["languages"]), v["runner"])
    Console().print(table)


def _voices_of(runner: Any, required: bool) -> list[dict[str, Any]]:
    """A runner's voices, each with its runner's name; none from one that is unavailable or
    cannot list them (E405 instead when that runner was asked for by name)."""
    if not hasattr(runner, "voices"):
        if required:
            raise BreezeError("E405", f"runner {runner.name!r} cannot list its voices")
        return []
    if not runner.is_supported():
        return []
    try:
        return [{**v, "runner": runner.name} for v in runner.voices()]
    finally:
        runner.unload()


async def _say(
    request: InferenceRequest, runner: str | None, sink: _Sink, json_: bool
) -> tuple[InferenceResult, bool]:
    """Stream the speech into the sink; the terminal result, and whether Ctrl+C stopped it."""
    engine = make_engine()
    voice = request.params.get("voice")
    if voice and runner is None:
        runner = await asyncio.to_thread(runner_for_voice, engine, str(voice))
    handle = engine.submit(request, runner=runner)
    interrupt = _Interrupt(handle, sink)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, interrupt.set)
    try:
        with _Bar(enabled=not json_ and isinstance(sink, _PlayerSink)) as bar:
            async for result in handle:
                if json_:
                    print_json(result)
                if result.ok and result.outputs.get("audio") and not interrupt.happened:
                    sink.add(result)
                bar.total(result)
                bar.update(sink)
            terminal = handle.terminal
            assert terminal is not None
            await sink.finish(bar, ok=terminal.ok and not interrupt.happened)
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        sink.close()
        await engine.aclose()
    return terminal, interrupt.happened


class _Interrupt:
    """Ctrl+C: cancel the request and silence the device at once."""

    def __init__(self, handle: Handle, sink: _Sink) -> None:
        self.handle, self.sink, self.happened = handle, sink, False

    def set(self) -> None:
        self.happened = True
        self.handle.cancel("interrupted (Ctrl+C)")
        self.sink.cancel()


class _Sink:
    """Where the audio goes. `starts`: (ms, sentence index) of each chunk, to tell which
    sentence a position belongs to."""

    def __init__(self) -> None:
        self.starts: list[tuple[float, int]] = []

    def add(self, result: InferenceResult) -> None:
        raise NotImplementedError

    def position_ms(self) -> float:
        raise NotImplementedError

    async def finish(self, bar: _Bar, ok: bool) -> None:
        """After the last result: wait for the sound, or keep the file only if `ok`."""

    def cancel(self) -> None:
        """Ctrl+C."""

    def close(self) -> None:
        """Release the device or the file."""

    def sentence_at(self, ms: float) -> int:
        index = 0
        for start, sentence in self.starts:
            if start <= ms:
                index = sentence
        return index


class _PlayerSink(_Sink):
    def __init__(self, player: Player) -> None:
        super().__init__()
        self.player = player
        self.origin: float | None = None  # the timeline position of the first sample

    def add(self, result: InferenceResult) -> None:
        out = result.outputs
        placed = self.player.play(out["audio"], out.get("sample_rate"), out.get("channels", 1))
        if self.origin is None:
            self.origin = placed.start_ms
        self.starts.append((placed.start_ms - self.origin,
                            int(result.metadata.get("sentence_index", 0))))

    def position_ms(self) -> float:
        return max(0.0, self.player.played_ms - (self.origin or 0.0))

    async def finish(self, bar: _Bar, ok: bool) -> None:
        drained = asyncio.ensure_future(self.player.drain())
        while not drained.done():  # the bar moves while the sound plays
            bar.update(self)
            await asyncio.wait({drained}, timeout=0.1)
        bar.update(self)

    def cancel(self) -> None:
        self.player.cancel()

    def close(self) -> None:
        self.player.close()


class _WavSink(_Sink):
    """Written as it comes to FILE.part, renamed to FILE once the speech is complete."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.part = path.with_name(path.name + ".part")
        if path.is_dir():
            raise BreezeError("E400", f"cannot write {path}: it is a directory "
                                      f"(give a file name, such as {path / 'speech.wav'})")
        try:
            self.file = self.part.open("wb")
        except OSError as exc:
            raise BreezeError("E400", f"cannot write {path}: {exc.strerror}") from None
        self.writer: wave.Wave_write | None = None  # made with the first chunk's format
        self.written_ms = 0.0

    def add(self, result: InferenceResult) -> None:
        out = result.outputs
        if self.writer is None:
            self.writer = wave.open(self.file, "wb")
            self.writer.setnchannels(int(out.get("channels", 1)))
            self.writer.setsampwidth(2)
            self.writer.setframerate(int(out["sample_rate"]))
        self.writer.writeframes(out["audio"])
        self.written_ms += float(result.metadata.get("audio_duration_ms") or 0.0)

    def position_ms(self) -> float:
        return self.written_ms

    async def finish(self, bar: _Bar, ok: bool) -> None:
        self._close_file()
        if ok and self.writer is not None:
            self.part.replace(self.path)

    def close(self) -> None:
        self._close_file()
        self.part.unlink(missing_ok=True)  # what an error or Ctrl+C left

    def _close_file(self) -> None:
        if not self.file.closed:
            if self.writer is not None:  # wave writes the header's sizes on close
                self.writer.close()
            self.file.close()


class _Bar:
    """On a terminal, a progress bar on stderr: the sentence playing, seconds played of the
    seconds synthesized so far (both from the results' metadata)."""

    def __init__(self, enabled: bool) -> None:
        console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.fields[sentence]}"), BarColumn(),
            TextColumn("{task.fields[seconds]}"), console=console,
        ) if enabled and console.is_terminal else None
        self.task = None if self.progress is None else self.progress.add_task(
            "say", total=None, sentence="", seconds=""
        )
        self.total_ms = 0.0
        self.sentences = 0

    def __enter__(self) -> _Bar:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def total(self, result: InferenceResult) -> None:
        meta = result.metadata
        self.sentences = int(meta.get("total_sentences") or self.sentences)
        self.total_ms = float(meta.get("cumulative_duration_ms") or self.total_ms)

    def update(self, sink: _Sink) -> None:
        if self.progress is None or self.task is None:
            return
        done = min(sink.position_ms(), self.total_ms)
        self.progress.update(
            self.task, completed=done, total=self.total_ms or None,
            sentence=f"sentence {sink.sentence_at(done) + 1}/{self.sentences}",
            seconds=f"{done / 1000:.1f} s / {self.total_ms / 1000:.1f} s",
        )
