"""Text helpers shared by runners: sentence boundaries and incremental UTF-8 decoding."""

from __future__ import annotations

import codecs
import re

__all__ = ["Utf8Stream", "split_complete_sentences", "stop_hold_back"]

_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e a.m p.m u.s u.k no fig approx dept inc ltd co"
    .split()
)
# A sentence ends at . ! ? … (or CJK 。！？) plus closing quotes/brackets, then space or newline.
_END = re.compile(r"([.!?…]+[\"'”’)\]]*\s+|[。！？]+[\"'”’」』)\]]*\s*|\n\s*\n)")


def split_complete_sentences(text: str) -> tuple[list[str], str]:
    """Split off the complete sentences at the start of `text`; return them and the rest.

    A period after a known abbreviation, a single capital initial, or between digits
    (3.14) does not end a sentence.
    """
    sentences: list[str] = []
    start = 0
    for match in _END.finditer(text):
        end = match.end()
        candidate = text[start:match.start() + len(match.group(1).rstrip())]
        if match.group(1).startswith(".") and _is_abbreviation(candidate):
            continue
        sentence = text[start:end].strip()
        if sentence:
            sentences.append(sentence)
        start = end
    return sentences, text[start:]


def _is_abbreviation(candidate: str) -> bool:
    words = candidate.rstrip(".").split()
    if not words:
        return False
    last = words[-1].lower().strip("(\"'")
    return last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha())


def stop_hold_back(text: str, stops: list[str]) -> int:
    """How many characters at the end of `text` could be the start of a stop string and
    must not be shown yet."""
    hold = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:n]):
                hold = max(hold, n)
                break
    return hold


class Utf8Stream:
    """Decodes token bytes as they come; a character split across tokens waits whole."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> str:
        return self._decoder.decode(data)

    def flush(self) -> str:
        """End of stream: an incomplete character (the reply was cut mid-way) is dropped."""
        self._decoder.reset()
        return ""
