"""The synthesis worker process: stopped mid-sentence, restarted after a crash or a kill."""

from __future__ import annotations

import os
import signal
import time

import pytest

from breeze.engine import Capability, Engine, InferenceRequest, Registry
from breeze.runners._tts_worker import SynthesisWorker, WorkerError, WorkerInterrupted
from breeze.runners.pyttsx3_tts import Pyttsx3Runner

LONG = ("This is a very long sentence that goes on and on without ever stopping, "
        "and it keeps going for a long while yet, with clause after clause after clause, "
        "so that espeak has to produce many seconds of speech for it before it can end.")


@pytest.fixture
def worker():
    worker = SynthesisWorker()
    yield worker
    worker.close()


def _dead(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_sentence_streams_in_chunks_then_ends(worker):
    with worker.synthesize(LONG, "gmw/en-us", 80, 1.0) as job:
        chunks = list(job)
    assert job.finished and len(chunks) > 10
    assert sum(len(c.pcm) for c in chunks) // 2 == job.samples
    assert [c.characters for c in chunks] == sorted(c.characters for c in chunks)
    assert chunks[-1].characters >= len(LONG) - 20


def test_interrupt_stops_the_process_in_the_middle_of_a_sentence(worker):
    with worker.synthesize(LONG, "gmw/en-us", 80, 1.0) as job:
        full = sum(1 for _ in job)
    pid = worker.pid
    with worker.synthesize(LONG, "gmw/en-us", 80, 1.0) as job:
        chunks = iter(job)
        next(chunks)  # the child is now blocked mid-sentence: nobody reads the rest
        start = time.perf_counter()
        job.interrupt()
        received = 1
        with pytest.raises(WorkerInterrupted):
            for _ in chunks:  # what the socket still held
                received += 1
    while not _dead(pid) and time.perf_counter() - start < 1:
        time.sleep(0.005)
    assert _dead(pid) and time.perf_counter() - start < 0.1
    assert worker.pid is None  # reaped: no zombie is left
    with worker.synthesize("And again.", "gmw/en-us", 175, 1.0) as job:
        assert sum(len(c.pcm) for c in job) > 0
    assert worker.pid != pid and worker.starts == 2
    assert received < full / 2, "the sentence was not cut short"


def test_leaving_a_job_unfinished_kills_the_child(worker):
    with worker.synthesize(LONG, "gmw/en-us", 80, 1.0) as job:
        next(iter(job))
        pid = worker.pid
    assert pid is not None and _dead(pid) and worker.pid is None


def test_a_stalled_child_is_e103_and_killed(worker):
    worker.stall_timeout_s = 0.5
    worker.start()
    pid = worker.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    start = time.perf_counter()
    with pytest.raises(WorkerError) as caught, worker.synthesize("Hello.", "gmw/en-us", 175, 1.0) \
            as job:
        list(job)
    assert caught.value.code == "E103" and caught.value.recoverable
    assert time.perf_counter() - start < 2 and _dead(pid)


async def test_a_worker_killed_mid_request_is_an_error_then_replaced():
    runner = Pyttsx3Runner()
    engine = Engine(Registry([runner]))
    request = InferenceRequest({"text": LONG * 3}, {"rate": 80}, capability=Capability.TTS)
    try:
        handle = engine.submit(request)
        async for result in handle:
            if result.partial and runner.worker.pid is not None:
                os.kill(runner.worker.pid, signal.SIGKILL)  # a crash, mid-sentence
                break
        terminal = await handle.result()
        assert terminal.error is not None and terminal.error.code == "E101"
        assert "died" in terminal.error.message
        again = await engine.run(InferenceRequest({"text": "Back again."},
                                                  capability=Capability.TTS))
        assert again.ok and runner.worker.starts == 2
    finally:
        runner.unload()


def test_voices_come_from_espeak(worker):
    voices = worker.voices()
    ids = {v["id"] for v in voices}
    assert {"gmw/en-us", "gmw/en", "ko"} <= ids
    assert worker.sample_rate == 22050
