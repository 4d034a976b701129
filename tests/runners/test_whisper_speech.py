"""Real human speech, and how many of its words each English recognizer gets right.

The recordings ship in the source distribution of pocketsphinx 5.1.1 on PyPI (its test data,
BSD-2-Clause; the LibriVox readings of "Sense and Sensibility" are in the public domain), with
their transcripts. They are fetched once with `pip download` and the clips kept in
`~/.cache/breeze-tests` (`$BREEZE_TEST_SPEECH_DIR` elsewhere); see docs/asr.md, "Tests".
The benchmarks use them too (benchmarks/asr_accuracy.py).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import wave
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from breeze.engine import Engine, InferenceRequest, Registry
from breeze.runners.pocketsphinx_asr import PocketsphinxRunner
from breeze.runners.whisper_asr import WhisperRunner

SDIST = ("pocketsphinx", "5.1.1")
RATE = 16000
_DATA = f"{SDIST[0]}-{SDIST[1]}/test/data/"
_CARDS = {  # cards/cards.transcription of the sdist
    "001": "ten of clubs",
    "002": "four queen of clubs",
    "003": "seven of clubs",
    "004": "five five",
    "005": "eight of spades four of clubs seven of hearts",
}
_SPOKEN = {"goforward": "go forward ten meters"}  # the sdist's own test asserts this text


@dataclass(frozen=True)
class Clip:
    name: str
    pcm: bytes  # PCM16 mono at RATE
    text: str  # what was said, lowercase words

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / RATE


def speech_dir() -> Path:
    """The clips on this machine, fetched first when missing."""
    env = os.environ.get("BREEZE_TEST_SPEECH_DIR")
    base = Path(env) if env else Path.home() / ".cache" / "breeze-tests"
    target = base / f"{SDIST[0]}-{SDIST[1]}"
    if (target / "LICENSE").is_file():
        return target
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        staging = Path(tmp) / "clips"
        _extract(_download(Path(tmp)), staging)
        try:
            staging.rename(target)  # whole or not at all, should another run race this one
        except OSError:
            if not (target / "LICENSE").is_file():
                raise
    return target


def _download(into: Path) -> Path:
    name, version = SDIST
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", name,
         f"{name}=={version}", "-d", str(into)],
        capture_output=True, text=True, timeout=900,
    )
    archives = list(into.glob(f"{name}-{version}.tar.gz"))
    if done.returncode != 0 or not archives:
        raise AssertionError(f"the {name} {version} sdist (real speech) cannot be had: "
                             f"{done.stderr[-300:]}")
    return archives[0]


def _extract(archive: Path, staging: Path) -> None:
    wanted = re.compile(
        rf"^{re.escape(_DATA)}(librivox/[^/]+\.(wav|txt)|cards/\d+\.wav|goforward\.raw)$"
    )
    staging.mkdir()
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            inner = member.name.removeprefix(_DATA)
            if member.isfile() and wanted.match(member.name):
                dest = staging / inner.replace("/", "_")
            elif member.name == f"{SDIST[0]}-{SDIST[1]}/LICENSE":
                dest = staging / "LICENSE"
            else:
                continue
            source = tar.extractfile(member)
            assert source is not None
            with source, dest.open("wb") as out:
                shutil.copyfileobj(source, out)


def _wav(path: Path) -> bytes:
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (RATE, 1, 2)
        return wav.readframes(wav.getnframes())


@cache
def human_speech() -> tuple[Clip, ...]:
    """Every clip with its transcript: five LibriVox sentences (about 25 s), five spoken card
    names (about 10 s) and a spoken command."""
    root = speech_dir()
    clips = [
        Clip(path.stem.removeprefix("librivox_"), _wav(path),
             path.with_suffix(".txt").read_text(encoding="utf-8").strip())
        for path in sorted(root.glob("librivox_*.wav"))
    ]
    clips += [Clip(f"cards-{key}", _wav(root / f"cards_{key}.wav"), text)
              for key, text in _CARDS.items()]
    clips.append(Clip("goforward", (root / "goforward.raw").read_bytes(), _SPOKEN["goforward"]))
    return tuple(clips)


_NUMBERS = "zero one two three four five six seven eight nine ten".split()
_ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "dr": "doctor"}


def normalize(text: str) -> list[str]:
    """Words to compare: lowercase, no punctuation, hyphens split, digits spelled."""
    words = re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()
    out = []
    for word in words:
        word = _ABBREVIATIONS.get(word, word)
        out.append(_NUMBERS[int(word)] if word.isdigit() and int(word) <= 10 else word)
    return out


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        previous, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ref != hyp))
    return row[-1]


def wer(pairs: list[tuple[str, str]]) -> float:
    """Word error rate over (reference, hypothesis) pairs: errors / reference words."""
    errors = sum(edit_distance(normalize(ref), normalize(hyp)) for ref, hyp in pairs)
    return errors / sum(len(normalize(ref)) for ref, _ in pairs)


async def transcripts(engine: Engine, clips: tuple[Clip, ...], **params: object) -> list[str]:
    texts = []
    for clip in clips:
        final = await engine.run(InferenceRequest({"audio": clip.pcm}, params))
        assert final.ok, final.error
        texts.append(final.text)
    return texts


def test_the_recordings_come_with_their_transcripts_and_licence():
    clips = human_speech()
    assert len(clips) == 11 and sum(c.seconds for c in clips) > 30
    assert all(c.text and len(c.pcm) > RATE for c in clips)
    assert "Carnegie Mellon" in (speech_dir() / "LICENSE").read_text(encoding="utf-8")


def test_wer_is_measured_in_words():
    assert normalize("Mr. John's ill-disposed, 8 of spades!") == [
        "mister", "john's", "ill", "disposed", "eight", "of", "spades"]
    assert wer([("go forward ten meters", "go forward 10 meters.")]) == 0.0
    assert wer([("a b c d", "a x c")]) == 0.5


@cache
def loaded_whisper() -> WhisperRunner:
    """One loaded Whisper model for every test of the session (any module)."""
    runner = WhisperRunner()
    runner.load({})
    return runner


@pytest.fixture
def whisper_runner() -> WhisperRunner:
    return loaded_whisper()


async def test_whisper_gets_nine_words_in_ten_of_real_speech(whisper_runner):
    clips = tuple(c for c in human_speech() if c.name.startswith("sense_"))
    texts = await transcripts(Engine(Registry([whisper_runner])), clips,
                              stream_mode="sentence")
    assert wer([(c.text, t) for c, t in zip(clips, texts, strict=True)]) <= 0.10, texts


def commands() -> tuple[Clip, ...]:
    """The short spoken commands (about 14 s): card names and "go forward ten meters"."""
    return tuple(c for c in human_speech() if not c.name.startswith("sense_"))


async def test_whisper_gets_short_commands_right(whisper_runner):
    clips = commands()
    texts = await transcripts(Engine(Registry([whisper_runner])), clips,
                              stream_mode="sentence")
    assert wer([(c.text, t) for c, t in zip(clips, texts, strict=True)]) <= 0.25, texts


async def test_pocketsphinx_on_short_commands_is_the_baseline():
    """pocketsphinx, the last fallback, misses about a third of these words (decoding costs
    it more than Whisper, so only the short commands are heard here; the benchmark hears
    all)."""
    clips = commands()
    texts = await transcripts(Engine(Registry([PocketsphinxRunner()])), clips,
                              stream_mode="sentence")
    assert wer([(c.text, t) for c, t in zip(clips, texts, strict=True)]) <= 0.45, texts
