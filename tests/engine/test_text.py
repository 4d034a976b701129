"""Sentence splitting: whole texts, streamed texts (same answer), long sentences, speed."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breeze.engine.text import has_speech, split_complete_sentences, split_sentences, stop_hold_back


def texts(text: str, max_chars: int | None = None) -> list[str]:
    return [s.text for s in split_sentences(text, max_chars)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello there. How are you today?", ["Hello there.", "How are you today?"]),
        # abbreviations and initials
        ("Dr. Smith met Mrs. Jones. They talked.", ["Dr. Smith met Mrs. Jones.", "They talked."]),
        ("See e.g. the book by J. R. R. Tolkien. It is long.",
         ["See e.g. the book by J. R. R. Tolkien.", "It is long."]),
        ("He arrived at 3 p.m. Then he left.", ["He arrived at 3 p.m.", "Then he left."]),
        ("I live in the U.S. The U.S. government is big.",
         ["I live in the U.S.", "The U.S. government is big."]),
        ("Apples, pears, etc. Then more.", ["Apples, pears, etc.", "Then more."]),
        ("The answer is no. See No. 5 for more.", ["The answer is no.", "See No. 5 for more."]),
        ("It costs approx. five euros.", ["It costs approx. five euros."]),
        # decimals, versions, addresses
        ("Pi is about 3.14. That is a decimal.", ["Pi is about 3.14.", "That is a decimal."]),
        ("Version 2.0.1 is out. Visit example.com now!",
         ["Version 2.0.1 is out.", "Visit example.com now!"]),
        # ellipses
        ("Wait... what? I thought so... Then it ended…",
         ["Wait... what?", "I thought so...", "Then it ended…"]),
        # quotes and brackets
        ('"Stop!" he said. She asked, "Why?" Then silence.',
         ['"Stop!" he said.', 'She asked, "Why?"', "Then silence."]),
        ("He said (really!) that it works. Ok.", ["He said (really!) that it works.", "Ok."]),
        ("“It works.” Good.", ["“It works.”", "Good."]),
        ("**Bold sentence.** Next one.", ["**Bold sentence.**", "Next one."]),
        # CJK punctuation needs no space after it
        ("你好。今天天气很好！你呢？", ["你好。", "今天天气很好！", "你呢？"]),
        ("「行こう。」と彼は言った。", ["「行こう。」", "と彼は言った。"]),
        # line breaks: paragraphs, lists, headings; a hard-wrapped sentence goes on
        ("One paragraph\n\nAnother one", ["One paragraph", "Another one"]),
        ("Here is a list:\n- First item\n- Second item",
         ["Here is a list:", "- First item", "- Second item"]),
        ("1. Buy milk\n2. Call mom", ["1. Buy milk", "2. Call mom"]),
        ("# Title\nSome text here.", ["# Title", "Some text here."]),
        ("This is a hard\nwrapped sentence. Next.", ["This is a hard\nwrapped sentence.", "Next."]),
        # nothing to split
        ("", []),
        ("   \n\n  ", []),
        ("no punctuation at all", ["no punctuation at all"]),
    ],
)
def test_sentences(text: str, expected: list[str]):
    assert texts(text) == expected


def test_spans_index_the_text():
    text = "  First one.  Second one!\n\nThird"
    for sentence in split_sentences(text):
        assert text[sentence.start:sentence.end] == sentence.text


def test_a_long_sentence_is_cut_at_clause_boundaries_then_spaces():
    clauses = ", ".join(["the quick brown fox jumps over the lazy dog"] * 12) + "."
    pieces = texts(clauses, max_chars=120)
    assert len(pieces) > 3 and all(len(p) <= 120 for p in pieces)
    assert all(p.endswith((",", ".")) for p in pieces)
    words = " ".join(["word"] * 100)
    pieces = texts(words, max_chars=50)
    assert all(len(p) <= 50 for p in pieces) and " ".join(pieces) == words
    unbroken = "字" * 250  # no space, no clause mark: cut at the limit
    assert texts(unbroken, max_chars=100) == ["字" * 100, "字" * 100, "字" * 50]


@pytest.mark.parametrize(
    ("text", "sentences", "rest"),
    [
        ("Hello there. How are", ["Hello there."], " How are"),
        ("Hello there.", [], "Hello there."),  # "." could still become ".5" or "..."
        ("Hello there. ", [], "Hello there. "),  # a lowercase word may follow
        ("Hello there. H", ["Hello there."], " H"),
        ("It costs 3.", [], "It costs 3."),
        ("It costs 3.1", [], "It costs 3.1"),
        ("你好。", [], "你好。"),  # a closing quote may follow
        ("你好。世", ["你好。"], "世"),
        ("A list:\n- one\n- tw", ["A list:", "- one"], "- tw"),
    ],
)
def test_streamed_text_keeps_what_may_change(text: str, sentences: list[str], rest: str):
    assert split_complete_sentences(text) == (sentences, rest)


def test_a_long_streamed_sentence_gives_up_its_leading_clauses():
    text = "one two three, " * 20
    sentences, rest = split_complete_sentences(text, max_chars=60)
    assert sentences and all(len(s) <= 60 for s in sentences)
    assert len(rest) <= 60
    assert " ".join(sentences + [rest.strip()]).split() == text.split()


def _stream(text: str, cuts: list[int], max_chars: int | None = None) -> list[str]:
    """What a consumer of a stream growing to `text` collects (the end flushes the rest)."""
    collected: list[str] = []
    consumed = 0
    for cut in sorted(set(cuts)) + [len(text)]:
        sentences, rest = split_complete_sentences(text[consumed:cut], max_chars)
        collected += sentences
        consumed = cut - len(rest)
    return collected + texts(text[consumed:], max_chars)


_ALPHABET = st.sampled_from(list("ab AZ.,!?…\n\"'9)") + ["Dr.", "e.g.", "3.14", "。", "- ", "1. "])


@settings(max_examples=300, deadline=None)
@given(st.lists(_ALPHABET, max_size=40).map("".join), st.lists(st.integers(0, 120)))
def test_streaming_splits_exactly_like_the_whole_text(text: str, cuts: list[int]):
    assert _stream(text, [c for c in cuts if c <= len(text)]) == texts(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(_ALPHABET, max_size=80).map("".join), st.lists(st.integers(0, 240)))
def test_streaming_with_a_limit_keeps_every_word_in_order(text: str, cuts: list[int]):
    pieces = _stream(text, [c for c in cuts if c <= len(text)], max_chars=20)
    assert all(len(p) <= 20 for p in pieces)
    assert "".join(pieces).replace(" ", "").replace("\n", "") == "".join(text.split())


@pytest.mark.parametrize(
    "text",
    [
        "The quick brown fox jumps over the lazy dog. " * 6_000,
        ". " * 125_000,
        "\n" * 250_000,
        "x" * 250_000,
        "e.g. " * 50_000,
        "你好。" * 80_000,
        "word word word\n" * 17_000,
    ],
    ids=["prose", "dots", "newlines", "one-word", "abbreviations", "cjk", "wrapped"],
)
def test_pathological_texts_split_in_linear_time(text: str):
    start = time.perf_counter()
    pieces = split_sentences(text, max_chars=300)
    split_complete_sentences(text, max_chars=300)
    assert time.perf_counter() - start < 10  # quadratic would take hours
    assert all(len(p.text) <= 300 for p in pieces)


def test_has_speech():
    assert has_speech("Hi") and has_speech("42") and has_speech("😀") and has_speech("你好")
    assert not has_speech("...!? -- ;") and not has_speech(" \n\t") and not has_speech("")


def test_stop_hold_back_still_holds_a_possible_stop_string():
    assert stop_hold_back("Hello <|im", ["<|im_end|>"]) == 4
    assert stop_hold_back("Hello", ["<|im_end|>"]) == 0
