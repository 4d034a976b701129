"""The intelligibility benchmark's arithmetic: word error counting and the report's spread."""

from __future__ import annotations

import pytest

from benchmarks.tts_intelligibility import SENTENCES, _report, edit_distance, words


def test_word_errors_count_substitutions_deletions_and_insertions():
    reference = words("The birch canoe slid on the smooth planks.")
    assert edit_distance(reference, reference) == 0
    assert edit_distance(reference, words("The merch can be slid on the smooth clanks.")) == 4
    assert edit_distance(reference, []) == len(reference)
    assert words("It's easy, isn’t it?") == ["it's", "easy", "isn't", "it"]


def test_the_report_gives_medians_with_their_spread_and_the_goal():
    def runs(errors_by_repeat: list[int], first_ms: float) -> list[dict]:
        return [{"repeat": k, "text": s, "heard": "", "errors": errors if i == 0 else 0,
                 "first_ms": first_ms + k, "rtf": 0.1 * (k + 1)}
                for k, errors in enumerate(errors_by_repeat) for i, s in enumerate(SENTENCES)]

    report = _report({"pyttsx3": runs([30, 28, 32], 5.0), "piper": runs([8, 10, 9], 500.0)},
                     3, "whisper", "whisper-tiny-en", {})
    piper = report["runners"]["piper"]
    assert piper["wer"] == {"median": 0.113, "min": 0.1, "max": 0.125,
                            "runs": [0.1, 0.125, 0.113]}
    assert piper["first_audio_ms"]["runs"] == [500.0, 501.0, 502.0]
    assert piper["rtf"]["min"] == 0.1 and piper["rtf"]["max"] == 0.3
    assert len(piper["misheard"]) == 1 and report["words"] == 80
    assert report["goal"]["met"] is True
    assert report["goal"]["neural_wer_over_espeak_wer"] == pytest.approx(0.3, abs=0.01)
