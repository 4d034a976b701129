"""Text helpers shared by runners: sentence boundaries and incremental UTF-8 decoding.

Sentences are found in one left-to-right pass. A candidate end is a run of terminators
(. ! ? … and CJK 。！？) with its closing quotes or brackets, or a line break. Whether a
candidate really ends a sentence depends on what surrounds it: the word before (an
abbreviation, an initial, a list number) and the first character after (a lowercase word
continues the sentence). A streamed text may not show that character yet; such a candidate
stays undecided until more text arrives, so a streamed split equals the split of the whole.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass

from .errors import BreezeError

__all__ = [
    "MAX_SPEECH_CHARACTERS",
    "Sentence",
    "SentenceStream",
    "has_speech",
    "speakable_sentences",
    "Utf8Stream",
    "split_complete_sentences",
    "split_sentences",
    "stop_hold_back",
]

# Never end a sentence: they precede a name, a number or an example.
_TITLES = frozenset(
    "mr mrs ms dr prof sr jr st mt vs cf e.g i.e eg ie fig figs approx ca vol lt sgt capt rev"
    " hon".split()
)
# End a sentence only when a capitalised word follows ("... and so on, etc. Then ...").
_ABBREVIATIONS = frozenset(
    "etc inc ltd co corp dept no nos jan feb mar apr jun jul aug sep sept oct nov dec a.m p.m"
    " u.s u.k u.n e.u ph.d".split()
)
_CJK_END = "。！？｡"
_CLOSERS = "\"'”’»」』）)]}*_"
_CANDIDATE = re.compile(
    rf"(?P<term>[.!?…‼⁇⁈⁉]+|[{_CJK_END}]+)(?P<close>[{re.escape(_CLOSERS)}]*)|(?P<nl>\n)"
)
_LIST_MARKER = re.compile(r"\s*(?:[-*•#>]|\d{1,3}[.)])\s")
_CLAUSE_END = re.compile(r"[,;:—–]\s+|[，、；：]")
_WORD = re.compile(r"[\w.'’-]+$")
_OPENERS_AND_SPACE = re.compile(r"[\s\"'“‘«「『(（\[]*")
_LINE_SPACE = re.compile(r"[ \t]*")


@dataclass(frozen=True, slots=True)
class Sentence:
    """`text` is `source[start:end]` without its surrounding whitespace."""

    text: str
    start: int
    end: int


def has_speech(text: str) -> bool:
    """Whether a speech synthesizer has anything to say: a letter, digit or symbol (emoji
    included), not only punctuation and space."""
    return any(unicodedata.category(c)[0] in "LNS" for c in text)


MAX_SPEECH_CHARACTERS = 100_000  # about two hours of speech
# Control, surrogate, private-use and unassigned characters: nothing a voice can say.
_UNSPOKEN_CATEGORIES = {"Cc", "Cs", "Co", "Cn"}


def speakable_sentences(text: object, max_sentence_chars: int) -> list[Sentence]:
    """The sentences of a text to speak, cut to `max_sentence_chars`; BreezeError E400
    saying why there are none. Offsets index the caller's text."""
    if not isinstance(text, str) or not text.strip():
        raise BreezeError("E400", "the text to speak is empty")
    if len(text) > MAX_SPEECH_CHARACTERS:
        raise BreezeError("E400", f"the text is too long: {len(text):,} characters (the limit "
                                  f"is {MAX_SPEECH_CHARACTERS:,})")
    cleaned = "".join(
        " " if unicodedata.category(c) in _UNSPOKEN_CATEGORIES and c not in "\n\t" else c
        for c in text
    )  # same length: sentence offsets still index the caller's text
    sentences = [s for s in split_sentences(cleaned, max_sentence_chars) if has_speech(s.text)]
    if not sentences:
        raise BreezeError("E400", "nothing to speak: the text has no letters, digits or symbols")
    return sentences


def split_sentences(text: str, max_chars: int | None = None) -> list[Sentence]:
    """Every sentence of a complete text, in order; the end of the text ends the last one.

    With `max_chars`, a longer sentence is cut into pieces (see `_cut_long`).
    """
    ends, _ = _boundaries(text, final=True)
    return _spans(text, ends, max_chars)


def split_complete_sentences(
    text: str, max_chars: int | None = None
) -> tuple[list[str], str]:
    """Split off the sentences at the start of a streamed `text` that more text cannot change;
    return them and the rest. With `max_chars`, long sentences are cut as `split_sentences`
    cuts them, and a rest longer than that gives up its leading pieces too (so a very long
    sentence can be spoken before it ends)."""
    ends, last = _boundaries(text, final=False)
    sentences = _spans(text, ends, max_chars)
    if max_chars is not None and len(text) - last > max_chars:
        pieces = _cut_long(text, last, len(text), max_chars)
        sentences += _spans(text, [end for _, end in pieces[:-1]], None, last)
        last = pieces[-1][0]  # the last piece may still grow
    return [s.text for s in sentences], text[last:]


def _spans(
    text: str, ends: list[int], max_chars: int | None, start: int = 0
) -> list[Sentence]:
    spans: list[Sentence] = []
    for end in ends:
        pieces = [(start, end)]
        if max_chars is not None and end - start > max_chars:
            pieces = _cut_long(text, start, end, max_chars)
        for a, b in pieces:
            sentence = _strip(text, a, b)
            if sentence is not None:
                spans.append(sentence)
        start = end
    return spans


def _strip(text: str, start: int, end: int) -> Sentence | None:
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return None
    offset = start + len(piece) - len(piece.lstrip())
    return Sentence(stripped, offset, offset + len(stripped))


def _boundaries(text: str, final: bool) -> tuple[list[int], int]:
    """Sentence end offsets, and where the undecided rest begins."""
    ends: list[int] = []
    start = 0
    for match in _CANDIDATE.finditer(text):
        verdict = _ends_sentence(text, start, match, final)
        if verdict is None:  # needs text that has not arrived yet
            return ends, start
        if verdict:
            if text[start:match.end()].strip():
                ends.append(match.end())
            start = match.end()  # whitespace only: nothing to say, move on
    if final and text[start:].strip():
        ends.append(len(text))
        start = len(text)
    return ends, start


def _ends_sentence(text: str, start: int, match: re.Match[str], final: bool) -> bool | None:
    after = match.end()
    if match.group("nl") is not None:
        return _line_break_ends(text, start, match.start(), final)
    term = match.group("term")
    if term[0] in _CJK_END:
        return True if after < len(text) or final else None
    if after == len(text):
        return True if final else None
    if not text[after].isspace():  # 3.14, e.g.x, example.com, "Hi!" said
        return False
    following = _next_visible(text, after)
    if following is None:
        return True if final else None
    if following.islower():  # "Wait... what", "approx. five", "Stop!" he said
        return False
    if term == ".":
        return not _period_is_not_an_end(text, start, match.start(), following)
    return True


def _period_is_not_an_end(text: str, start: int, dot: int, following: str) -> bool:
    found = _WORD.search(text, max(start, dot - 24), dot)
    raw = found.group(0).strip(".'’-") if found else ""
    word = raw.lower()
    if word in _TITLES:
        return True
    if len(raw) == 1 and raw.isupper():  # an initial: J. R. R. Tolkien
        return True
    if word in _ABBREVIATIONS:
        return not following.isupper()
    if not word.isdigit():
        return False
    line_start = text.rfind("\n", start, dot) + 1  # "1. Buy milk": a list number
    return not text[max(start, line_start):dot - len(raw)].strip()


def _line_break_ends(text: str, start: int, newline: int, final: bool) -> bool | None:
    """A blank line always ends a sentence; a single line break only around a list item,
    a heading or after a colon (a hard-wrapped sentence goes on)."""
    line = text[max(start, text.rfind("\n", 0, newline) + 1):newline]
    if _LIST_MARKER.match(line + " ") or line.rstrip().endswith(":"):
        return True
    after = _skip(_LINE_SPACE, text, newline + 1)
    head = text[after:after + 8]
    if head.startswith("\n"):
        return True
    if len(head) < 4 and not final:  # the next line's start decides
        return None
    return bool(_LIST_MARKER.match(head)) or not head


def _next_visible(text: str, index: int) -> str | None:
    """The first character from `index` on that is not space or an opening quote/bracket."""
    visible = _skip(_OPENERS_AND_SPACE, text, index)
    return text[visible] if visible < len(text) else None


def _skip(pattern: re.Pattern[str], text: str, index: int) -> int:
    found = pattern.match(text, index)
    return found.end() if found else index


def _cut_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Cut text[start:end] into pieces of at most `max_chars`: after the last clause end in
    reach, else before the last word, else (no space at all) right at the limit."""
    pieces: list[tuple[int, int]] = []
    while end - start > max_chars:
        cut = _cut_point(text, start, start + max_chars)
        pieces.append((start, cut))
        start = cut
    pieces.append((start, end))
    return pieces


def _cut_point(text: str, start: int, limit: int) -> int:
    floor = start + (limit - start) // 3  # never leave a tiny first piece
    clause = [m.end() for m in _CLAUSE_END.finditer(text, floor, limit)]
    if clause:
        return clause[-1]
    space = text.rfind(" ", floor, limit)
    return space + 1 if space > floor else limit


class SentenceStream:
    """The sentences of a text that grows (a streamed reply), each handed out once, as soon
    as more text cannot change it: the one splitter every streamed consumer uses.

    `feed` takes the whole text so far; `end` is where the sentences handed out end (the
    undecided rest starts there); `finish` hands out the rest of a text that is complete.
    """

    def __init__(self, max_chars: int | None = None) -> None:
        self.max_chars = max_chars
        self.end = 0

    def feed(self, text: str) -> list[str]:
        complete, rest = split_complete_sentences(text[self.end:], self.max_chars)
        self.end = len(text) - len(rest)
        return complete

    def finish(self, text: str) -> list[str]:
        """The end of the text: what is left is a sentence (or several) too."""
        rest, self.end = text[self.end:], len(text)
        return [s.text for s in split_sentences(rest, self.max_chars)]

    def skip_to(self, offset: int) -> None:
        """Text before `offset` was dealt with otherwise: sentences start after it."""
        self.end = max(self.end, offset)


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
