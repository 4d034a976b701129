"""What Breeze's voice has said: the part of a reply that was heard before an interruption,
and whether a transcript is only Breeze's own voice heard back."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from difflib import SequenceMatcher

__all__ = ["SpokenLog", "Timeline", "words"]

_WORD = re.compile(r"[\w']+")
ECHO_SIMILARITY = 0.6  # this share of a transcript's words said by Breeze, in order: an echo
_KEPT_S = 30.0  # sentences older than this cannot come back as an echo


def words(text: str) -> list[str]:
    return [w.lower().strip("'") for w in _WORD.findall(text)]


@dataclass(slots=True)
class _Placed:
    text: str
    start_ms: float
    end_ms: float


class Timeline:
    """One reply's sentences where the player placed them, to cut the reply where playback
    stopped."""

    def __init__(self) -> None:
        self._sentences: dict[int, _Placed] = {}

    def place(self, index: int, text: str, start_ms: float, end_ms: float) -> None:
        placed = self._sentences.get(index)
        if placed is None:
            self._sentences[index] = _Placed(text, start_ms, end_ms)
        else:  # a sentence comes in several chunks of audio
            placed.end_ms = max(placed.end_ms, end_ms)

    def split(self, reply: str, played_ms: float) -> tuple[str, str]:
        """(spoken, unspoken) of `reply` once playback stopped at `played_ms`: the sentences
        heard whole, and of the one cut short the share of its words its audio had played."""
        spoken: list[str] = []
        for index in sorted(self._sentences):
            placed = self._sentences[index]
            if placed.start_ms >= played_ms:
                break
            if placed.end_ms <= played_ms:
                spoken.append(placed.text)
                continue
            share = (played_ms - placed.start_ms) / max(1.0, placed.end_ms - placed.start_ms)
            sentence_words = placed.text.split()
            heard = sentence_words[: round(share * len(sentence_words))]
            if len(heard) == len(sentence_words):
                spoken.append(placed.text)
            elif heard:
                spoken.append(" ".join(heard) + "…")
            break
        said = _cover(reply, spoken)
        return said, reply[len(said):].strip() if said else reply.strip()


def _cover(reply: str, spoken: list[str]) -> str:
    """The start of `reply` that holds the spoken sentences (the reply's own spacing and
    line breaks kept), with the ellipsis of a sentence cut short."""
    position = 0
    for sentence in spoken:
        cut = sentence.endswith("…")
        body = sentence[:-1] if cut else sentence
        found = reply.find(body, position)
        if found < 0:  # spoken text the reply does not hold verbatim: keep what was spoken
            return " ".join(spoken)
        position = found + len(body)
        if cut:
            return reply[:position].rstrip() + "…"
    return reply[:position].rstrip()


class SpokenLog:
    """The sentences Breeze's voice played, with when they played (perf_counter seconds)."""

    def __init__(self) -> None:
        self._played: deque[tuple[str, float, float]] = deque()

    def played(self, text: str, start: float, end: float) -> None:
        self._played.append((text, start, end))
        while self._played and self._played[0][2] < end - _KEPT_S:
            self._played.popleft()

    def stopped_at(self, when: float) -> None:
        """Playback was cut: the last sentence ended early."""
        if self._played:
            text, start, end = self._played[-1]
            if end > when:
                self._played[-1] = (text, start, max(start, when))

    def echo_of(self, transcript: str, start: float, end: float) -> str | None:
        """What Breeze was saying that `transcript` repeats, heard between `start` and `end`
        (perf_counter seconds); None when the transcript is the user's own words."""
        heard = words(transcript)
        overlapping = [text for text, played_from, played_to in self._played
                       if played_to >= start - 1.0 and played_from <= end]
        if not heard or not overlapping:
            return None
        said = " ".join(overlapping)
        matcher = SequenceMatcher(None, heard, words(said), autojunk=False)
        matched = sum(block.size for block in matcher.get_matching_blocks())
        return said if matched / len(heard) >= ECHO_SIMILARITY else None
