"""pyttsx3 (espeak-ng) in a child process of its own, and the parent's handle on it.

Why a process: pyttsx3's run loop can hang after many calls and cannot stop an utterance
half-way; a process can always be killed, and a fresh one is ready in about 60 ms. This
module runs as a script in the child (stdlib and pyttsx3 only, so the child starts fast);
the parent imports `SynthesisWorker`. They talk over a socket pair in pickled tuples:

    parent -> child   ("synth", text, voice, rate, volume) | ("voices",) | ("quit",)
    child -> parent   ("ready", sample_rate) | ("voices", [...]) | ("error", message)
                      ("chunk", pcm16, characters_started) ... ("done", samples)

The audio is tapped from espeak's synthesis callback as it is produced (buffers of about a
second), so the first audio of a sentence arrives long before the sentence is finished. The
callback blocks while the socket is full: the child never runs far ahead of the parent.
pyttsx3 still drives synthesis (voice, rate, volume, save_to_file, runAndWait, its
finished-utterance event); its own callback is called after ours, so it works as designed.
"""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["Chunk", "SynthesisWorker", "WorkerError", "WorkerInterrupted"]

DEFAULT_SAMPLE_RATE = 22050  # espeak-ng's rate, also what pyttsx3 writes its files at


# -- the parent's side --------------------------------------------------------------------


class WorkerError(Exception):
    """The worker failed; `code` is the Breeze error code the runner reports. `recoverable`:
    the process died or stalled, so a retry (with a fresh process) may well succeed."""

    def __init__(self, code: str, message: str, recoverable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.recoverable = recoverable


class WorkerInterrupted(Exception):
    """The job was interrupted (its process killed) on purpose."""


@dataclass(frozen=True, slots=True)
class Chunk:
    pcm: bytes  # PCM16 mono at the worker's sample rate
    characters: int  # characters of the text whose speech has started so far


class SynthesisWorker:
    """One child process at a time, started on demand and after every kill.

    Not thread-safe: one job at a time (the runner holds a lock). `Job.interrupt` is the
    exception: any thread may call it.
    """

    def __init__(self, stall_timeout_s: float = 10.0, start_timeout_s: float = 15.0) -> None:
        self.stall_timeout_s = stall_timeout_s
        self.start_timeout_s = start_timeout_s
        self.sample_rate = DEFAULT_SAMPLE_RATE
        self.starts = 0  # processes started so far (restarts show up here)
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the child unless it is running; WorkerError E501 when it cannot start."""
        if self._proc is not None and self._proc.poll() is None:
            return
        self._reap()
        parent, child = socket.socketpair()
        with child:
            self._proc = subprocess.Popen(
                # -P: runners/ must not shadow the modules pyttsx3 imports
                [sys.executable, "-P", os.path.abspath(__file__), str(child.fileno())],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # pyttsx3 prints "Audio saved to ..."
                stderr=subprocess.DEVNULL,  # espeak-ng's own messages
                start_new_session=True,  # Ctrl+C in the terminal is the parent's to handle
            )
        self._conn = Connection(parent.detach())
        self.starts += 1
        try:
            kind, value = self._receive(self.start_timeout_s)
        except WorkerError as exc:
            self._reap()
            raise WorkerError("E501", f"the speech worker did not start: {exc}") from None
        if kind != "ready":
            self._reap()
            raise WorkerError("E501", f"the speech worker did not start: {value}")
        self.sample_rate = int(value)

    def voices(self) -> list[dict[str, Any]]:
        self.start()
        self._send(("voices",))
        kind, value = self._receive(self.stall_timeout_s)
        if kind != "voices":
            raise WorkerError("E101", f"the speech worker failed to list voices: {value}")
        return list(value)

    def synthesize(self, text: str, voice: str, rate: int, volume: float) -> Job:
        """A job that yields the audio of `text` as it is produced; use it in `with`."""
        self.start()
        self._send(("synth", text, voice, rate, volume))
        return Job(self)

    def close(self) -> None:
        """Ask the child to quit, killing it if it does not within a second."""
        if self._proc is not None and self._proc.poll() is None and self._conn is not None:
            try:
                self._send(("quit",))
                self._proc.wait(timeout=1.0)
            except (WorkerError, subprocess.TimeoutExpired):
                pass
        self._reap()

    def __del__(self) -> None:  # dropped without close(): the child must not outlive it
        self._reap()

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def _reap(self) -> None:
        """Kill (if still running) and wait for the child; close the connection."""
        self._kill()
        if self._proc is not None:
            self._proc.wait(timeout=5.0)
            self._proc = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _send(self, message: tuple[Any, ...]) -> None:
        assert self._conn is not None
        try:
            self._conn.send(message)
        except OSError as exc:
            self._reap()
            raise WorkerError("E101", f"the speech worker is gone: {exc}", True) from None

    def _receive(self, timeout: float) -> tuple[Any, ...]:
        """The next message; WorkerError E103 after `timeout` of silence, E101 if it died."""
        conn = self._conn
        assert conn is not None
        try:
            if not conn.poll(timeout):
                self._reap()
                raise WorkerError("E103", f"the speech worker stalled for {timeout:.0f} s", True)
            message: tuple[Any, ...] = conn.recv()
        except (EOFError, OSError):
            code = self._proc.poll() if self._proc is not None else None
            self._reap()
            raise WorkerError(
                "E101", f"the speech worker died (exit status {code})", True
            ) from None
        return message


class Job:
    """The audio of one text. Leaving it unfinished kills the worker (it is mid-sentence and
    its socket holds stale audio); the next job starts a fresh one."""

    def __init__(self, worker: SynthesisWorker) -> None:
        self._worker = worker
        self.finished = False
        self.interrupted = False
        self.samples = 0

    def __enter__(self) -> Job:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.finished:
            self.finished = True
            self._worker._reap()

    def interrupt(self) -> None:
        """Stop now, mid-sentence (from any thread): the child is killed."""
        if not self.finished:
            self.interrupted = True
            self._worker._kill()

    def __iter__(self) -> Iterator[Chunk]:
        while True:
            try:
                message = self._worker._receive(self._worker.stall_timeout_s)
            except WorkerError:
                self.finished = True
                if self.interrupted:
                    raise WorkerInterrupted from None
                raise
            kind = message[0]
            if kind == "chunk":
                self.samples += len(message[1]) // 2
                yield Chunk(message[1], message[2])
            elif kind == "done":
                self.finished = True
                return
            else:
                self.finished = True  # the child reported the failure and is idle again
                raise WorkerError("E101", f"speech synthesis failed: {message[1]}")


# -- the child's side ---------------------------------------------------------------------


class _Synthesizer:
    """pyttsx3's espeak engine with a tap on its synthesis callback."""

    def __init__(self, conn: Connection) -> None:
        import pyttsx3
        from pyttsx3.drivers import _espeak

        self._conn = conn
        self._espeak = _espeak
        self._engine = pyttsx3.init()
        # Not busy from the start: properties then apply at once, not inside the first
        # runAndWait, where its opening stop() would cancel them in espeak's queue.
        self._engine.proxy.setBusy(False)
        self._driver = self._engine.proxy._driver
        self._pyttsx3_callback = self._driver._onSynth
        self._finished = threading.Event()
        self._completed = False
        self._done_sent = True
        self._engine.connect("finished-utterance", self._on_finished)
        _espeak.SetSynthCallback(self._tap)
        self._characters = 0
        self._samples = 0
        self._properties: dict[str, Any] = {}

    def sample_rate(self) -> int:
        get_rate = getattr(self._espeak.dll, "espeak_ng_GetSampleRate", None)
        if get_rate is None:
            return DEFAULT_SAMPLE_RATE
        get_rate.restype = ctypes.c_int
        return int(get_rate()) or DEFAULT_SAMPLE_RATE

    def voices(self) -> list[dict[str, Any]]:
        return [
            {"id": v.id, "name": v.name, "languages": list(v.languages or []),
             "gender": v.gender}
            for v in self._engine.getProperty("voices")
        ]

    def speak(self, text: str, voice: str, rate: int, volume: float) -> None:
        self._characters = self._samples = 0
        engine = self._engine
        for name, value in (("voice", voice), ("rate", rate), ("volume", volume)):
            if self._properties.get(name) != value:  # a voice change reloads its data
                engine.setProperty(name, value)
                self._properties[name] = value
        self._finished.clear()
        self._done_sent = False
        self._settle()
        # Nothing is playing now, so a stop pyttsx3 requested in an earlier run and never
        # carried out (its loop had already ended) must not cancel this utterance.
        self._driver._stopping = False
        engine.save_to_file(text, os.devnull)  # not say(): that would play through aplay
        engine.runAndWait()
        # runAndWait may return before espeak is done: finished-utterance is the end
        while not self._finished.wait(1.0):
            pass  # a hang here is the parent's to detect (no message for a while)
        if not self._completed:
            raise RuntimeError("pyttsx3 stopped the utterance")

    def _on_finished(self, completed: bool = True, **_: Any) -> None:
        self._completed = completed
        self._finished.set()

    def _settle(self) -> None:
        """Let espeak apply the rate and volume (queued in its command FIFO) before
        runAndWait: that first stops what "is playing" and would drop them unapplied."""
        deadline = time.monotonic() + 1.0
        while self._espeak.IsPlaying() and time.monotonic() < deadline:
            time.sleep(0.0005)

    def _tap(self, wav: Any, numsamples: int, events: Any) -> int:
        i = 0
        while events[i].type != self._espeak.EVENT_LIST_TERMINATED:
            if events[i].type == self._espeak.EVENT_WORD:  # not always in text order
                end = events[i].text_position + events[i].length - 1
                self._characters = max(self._characters, end)
            i += 1
        try:
            if numsamples > 0:
                self._samples += numsamples
                pcm = ctypes.string_at(wav, numsamples * 2)
                self._conn.send(("chunk", pcm, self._characters))
            result = int(self._pyttsx3_callback(wav, numsamples, events))
            if self._finished.is_set() and self._completed and not self._done_sent:
                self._done_sent = True  # now: runAndWait returns up to 10 ms later
                self._conn.send(("done", self._samples))
        except OSError:  # the parent is gone
            os._exit(0)
        return result


def _serve(conn: Connection) -> None:
    try:
        synth = _Synthesizer(conn)
        conn.send(("ready", synth.sample_rate()))
    except Exception as exc:  # e.g. espeak-ng missing: tell the parent why
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    while True:
        try:
            command = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if command[0] == "quit":
            return
        try:
            if command[0] == "voices":
                conn.send(("voices", synth.voices()))
            else:
                synth.speak(*command[1:])
        except OSError:
            return
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])))
