"""The voice-activity segmenter (runners/_vad.py) on real human speech, silence and noise."""

from __future__ import annotations

from breeze.runners._vad import RATE, Segmenter, VadSettings, speech_probabilities
from tests.runners.test_whisper import clip, gap, noise


def segment(pcm: bytes, settings: VadSettings | None = None, chunk: int = 3200):
    with Segmenter(settings) as vad:
        found = []
        for offset in range(0, len(pcm), chunk):
            found += vad.feed(pcm[offset : offset + chunk])
        last = vad.finish()
    return found + ([last] if last else [])


def test_each_sentence_is_an_utterance_with_its_padding():
    first, second = clip("0930"), clip("0880")
    audio = gap(1.0) + first + gap(1.5) + second + gap(1.0)
    utterances = segment(audio)
    assert len(utterances) == 2
    one, two = utterances
    assert 0.7 <= one.start_s <= 1.2 and one.end_s <= 1.0 + len(first) / 2 / RATE + 0.5
    assert two.start_s >= one.end_s and two.end_s <= len(audio) / 2 / RATE
    assert one.pcm == audio[int(one.start_s * RATE) * 2 : int(one.end_s * RATE) * 2]


def test_how_audio_is_chunked_changes_nothing():
    audio = gap(0.5) + clip("goforward") + gap(1.0)
    assert segment(audio, chunk=3200) == segment(audio, chunk=1000) == segment(audio, chunk=99)


def test_silence_noise_and_clicks_are_no_speech():
    click = gap(1.0) + noise(0.1, "white") + gap(1.0)
    for audio in (gap(3.0), noise(3.0, "white"), noise(3.0, "brown"), click):
        assert segment(audio) == []
    assert max(speech_probabilities(noise(2.0, "white"))) < 0.5


def test_a_pause_shorter_than_min_silence_does_not_end_the_utterance():
    audio = gap(0.5) + clip("cards-001") + gap(0.3) + clip("cards-003") + gap(1.0)
    assert len(segment(audio, VadSettings(min_silence_ms=800))) == 1
    assert len(segment(audio, VadSettings(min_silence_ms=150))) >= 2


def test_the_utterance_in_progress_and_dropping_its_start():
    audio = gap(0.5) + clip("0870")
    with Segmenter() as vad:
        assert vad.feed(audio[: RATE * 2 * 3]) == []  # three seconds in: still speaking
        current = vad.current
        assert vad.in_speech and current is not None and current.end_s == vad.position_s
        vad.drop_until(2.0)
        assert abs(vad.current.start_s - 2.0) < 0.05  # type: ignore[union-attr]
        vad.feed(audio[RATE * 2 * 3 :])
        last = vad.finish()
    assert last is not None and abs(last.start_s - 2.0) < 0.05
    assert last.end_s >= len(audio) / 2 / RATE - 0.05
