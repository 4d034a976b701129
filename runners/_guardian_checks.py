"""The guardian's pattern checks: personal data (validated where a checksum exists) and
prompt-injection phrases. Pure functions over a text window; no model, no I/O.

Every finding is an `Issue` whose score says how sure and how serious it is (0..1); the
runner turns scores into statuses with the strictness thresholds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["Issue", "find_personal_data", "find_prompt_injection", "luhn_ok", "iban_ok"]


@dataclass(frozen=True, slots=True)
class Issue:
    """One finding: `text[start:end]` is the offending span; `excerpt` is safe to show."""

    type: str
    start: int
    end: int
    excerpt: str
    score: float

    def shifted(self, offset: int) -> Issue:
        return Issue(self.type, self.start + offset, self.end + offset, self.excerpt, self.score)


# Scores: a checksum-validated number or a well-known key format is certain; an e-mail or a
# formatted phone number is personal but less sensitive; digits near "call" may be anything.
SCORE_SECRET = 1.0
SCORE_VALIDATED = 1.0
SCORE_CONTACT = 0.95
SCORE_PHONE_BY_CONTEXT = 0.8
SCORE_INJECTION = 0.97
SCORE_INJECTION_WEAK = 0.8


# -- personal data -------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
    r"\.[A-Za-z]{2,24}(?![\w-])"
)
# 16 to 19 digits in groups of four, Amex's 4-6-5, or an ungrouped run of 13 to 19 digits.
_CARD = re.compile(
    r"(?<![\d-])(?:\d{4}([ -]?)\d{4}\1\d{4}\1\d{4}(?:\1?\d{1,3})?|\d{4}([ -]?)\d{6}\2\d{5}"
    r"|\d{13,19})(?![\d-])"
)
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){10,32}")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{2,5}(?:[ .-]\d{2,5}){1,4}(?![\w-])"
)
_PHONE_CONTEXT = re.compile(
    r"\b(?:phone|tel|telephone|call|mobile|cell|whatsapp|fax|text me|sms)\b[^\n\d]{0,24}"
    r"(?<![\d+])(\+?\d{7,15})(?!\d)",
    re.IGNORECASE,
)
_IP_OR_DATE = re.compile(
    r"\d{1,3}(?:\.\d{1,3}){3}|\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{4}"
)
# Key formats of well-known services, and values assigned to secret-sounding names.
_SECRETS = [
    re.compile(p)
    for p in (
        r"\bsk-(?:proj-|live-|test-|ant-)?[A-Za-z0-9_-]{20,}",
        r"\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}",
        r"\bgh[pousr]_[A-Za-z0-9]{30,}",
        r"\bgithub_pat_[A-Za-z0-9_]{30,}",
        r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",
        r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
        r"\bAIza[0-9A-Za-z_-]{35}",
        r"\bglpat-[A-Za-z0-9_-]{20,}",
        r"\bhf_[A-Za-z0-9]{30,}",
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----",
    )
]
_ASSIGNED_SECRET = re.compile(
    r"\b(?P<name>(?:[A-Za-z0-9]+[_-])*(?:apikey|key|secret|token|password|passwd|pwd))\b"
    r"[\"']?\s*[:=]\s*[\"']?(?P<value>[^\s\"',;]{6,})",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\bBearer\s+(?P<value>[A-Za-z0-9._~+/-]{20,}=*)")
_HEX = re.compile(r"[0-9a-fA-F]{32,}")
# One pass that finds where any key format could match: most text has none, and each
# format's own pass (they are reported in the order above) is then skipped. Without the
# leading word boundaries it matches a little more, and runs ten times faster (the regex
# engine skips ahead to the formats' first letters).
_ANY_SECRET = re.compile("|".join("(?:" + p.pattern.removeprefix(r"\b") + ")" for p in _SECRETS))
_DIGIT = re.compile(r"\d")  # cards, IBANs and phone numbers all have digits

# IBAN lengths by country (the SWIFT IBAN registry): a wrong length is no IBAN.
_IBAN_LENGTHS = dict(
    (entry[:2], int(entry[2:]))
    for entry in (
        "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 DK18 "
        "DO28 EE20 EG29 ES24 FI18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HR21 HU28 IE22 IL23 "
        "IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 MC27 MD24 ME22 MK19 MR27 "
        "MT31 MU30 NL18 NO15 PK24 PL28 PS29 PT25 QA29 RO24 RS22 SA24 SC31 SE24 SI19 SK24 SM27 "
        "ST25 SV28 TL23 TN24 TR26 UA29 VA22 VG24 XK20"
    ).split()
)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char)
        if i % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card_network_ok(digits: str) -> bool:
    """Whether the number starts like a card of a real network, at a length it issues."""
    n, two, four = len(digits), int(digits[:2]), int(digits[:4])
    if digits[0] == "4":
        return n in (13, 16, 19)
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16
    if two in (34, 37):
        return n == 15
    if two in (35, 30, 36, 38, 39) or digits[0] == "6":
        return 14 <= n <= 19
    return two in (50, 56, 57, 58) and 12 <= n <= 19  # Maestro


def iban_ok(iban: str) -> bool:
    """ISO 13616: the country's length and the mod-97 check."""
    iban = iban.replace(" ", "").upper()
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban[2:4].isdigit():
        return False
    rearranged = iban[4:] + iban[:4]
    if not rearranged.isalnum():
        return False
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def find_personal_data(text: str) -> list[Issue]:
    """E-mail addresses, phone numbers, card numbers (Luhn), IBANs (mod 97), keys and tokens.
    Overlapping findings keep the most certain one (a card number is no phone number)."""
    has_digits = _DIGIT.search(text) is not None
    found = [
        *_secrets(text),
        *(_cards(text) if has_digits else ()),
        *(_ibans(text) if has_digits else ()),
        *(_emails(text) if "@" in text else ()),
        *(_phones(text) if has_digits else ()),
    ]
    kept: list[Issue] = []
    for issue in found:  # in order of certainty: the first claim on a span wins
        if not any(issue.start < k.end and k.start < issue.end for k in kept):
            kept.append(issue)
    return sorted(kept, key=lambda i: i.start)


def _emails(text: str) -> Iterator[Issue]:
    for m in _EMAIL.finditer(text):
        local, _, domain = m.group().partition("@")
        yield Issue("email", m.start(), m.end(), f"{local[0]}***@{domain}", SCORE_CONTACT)


def _cards(text: str) -> Iterator[Issue]:
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if _card_network_ok(digits) and luhn_ok(digits):
            excerpt = f"**** **** **** {digits[-4:]}"
            yield Issue("card_number", m.start(), m.end(), excerpt, SCORE_VALIDATED)


def _ibans(text: str) -> Iterator[Issue]:
    for m in _IBAN.finditer(text):
        length = _IBAN_LENGTHS.get(m.group()[:2].upper())
        if length is None:
            continue
        end = _end_after_alnum(text, m.start(), length)
        if end is None or (end < len(text) and text[end].isalnum()):
            continue
        iban = text[m.start():end].replace(" ", "").upper()
        if iban_ok(iban):
            yield Issue("iban", m.start(), end, f"{iban[:4]} **** {iban[-4:]}", SCORE_VALIDATED)


def _end_after_alnum(text: str, start: int, count: int) -> int | None:
    """The index just after the `count`-th letter or digit from `start` (spaces skipped)."""
    seen = 0
    for i in range(start, len(text)):
        if text[i].isalnum():
            seen += 1
            if seen == count:
                return i + 1
        elif text[i] != " ":
            return None
    return None


def _phones(text: str) -> Iterator[Issue]:
    for m in _PHONE.finditer(text):
        number = m.group()
        digits = re.sub(r"\D", "", number)
        if _IP_OR_DATE.fullmatch(number) or not _phone_shaped(number, len(digits)):
            continue
        yield Issue("phone", m.start(), m.end(), _mask_digits(number), SCORE_CONTACT)
    for m in _PHONE_CONTEXT.finditer(text):
        yield Issue("phone", m.start(1), m.end(1), _mask_digits(m.group(1)),
                    SCORE_PHONE_BY_CONTEXT)


def _phone_shaped(number: str, digits: int) -> bool:
    """International (+) numbers have 8 to 15 digits; national ones, with an area code in
    brackets or in groups, 10 or 11 (shorter groups are dates, versions, amounts)."""
    if number.startswith("+"):
        return 8 <= digits <= 15
    if "(" in number:
        return 9 <= digits <= 12
    return digits in (10, 11)


def _mask_digits(number: str) -> str:
    digits = [i for i, c in enumerate(number) if c.isdigit()]
    keep = set(digits[-2:])
    return "".join("*" if c.isdigit() and i not in keep else c for i, c in enumerate(number))


def _secrets(text: str) -> Iterator[Issue]:
    if _ANY_SECRET.search(text):
        for pattern in _SECRETS:
            for m in pattern.finditer(text):
                yield _secret(m.start(), m.group())
    if "Bearer" in text:
        for m in _BEARER.finditer(text):
            yield _secret(m.start("value"), m.group("value"))
    if ":" not in text and "=" not in text:  # no value is assigned to a name
        return
    for m in _ASSIGNED_SECRET.finditer(text):
        value = m.group("value")
        if _looks_secret(m.group("name").lower(), value):
            yield _secret(m.start("value"), value)


def _looks_secret(name: str, value: str) -> bool:
    """A password is any non-trivial value; a key or token must look random (letters and
    digits mixed, or a long hex string), so "token: the_name_of_it" is no finding."""
    if name.endswith(("password", "passwd", "pwd")):
        return len(value) >= 6 and not value.isalpha()
    has_digit = any(c.isdigit() for c in value)
    has_alpha = any(c.isalpha() for c in value)
    return len(value) >= 16 and (bool(_HEX.fullmatch(value)) or (has_digit and has_alpha))


def _secret(start: int, value: str) -> Issue:
    excerpt = f"{value[:4]}…({len(value)} chars)"
    return Issue("secret", start, start + len(value), excerpt, SCORE_SECRET)


# -- prompt injection ----------------------------------------------------------------------

# Matched on a normalized text: lower case, leetspeak undone, punctuation and runs of
# space collapsed to one space ("I-G-N-O-R-E" stays split: the list is of phrases).
_BEFORE = r"(?:previous|prior|above|earlier|preceding|former|original|initial|system)"
_RULES = (r"(?:instructions?|prompts?|rules|directions|guidelines|messages|context|commands"
          r"|orders|programming)")
_SYSTEM_PROMPT = (r"(?:system prompt|system message|initial instructions|hidden instructions"
                  r"|original instructions|developer message|pre ?prompt|instructions above)")
_INJECTION_PHRASES: list[tuple[re.Pattern[str], float]] = [
    (re.compile(p), score)
    for p, score in (
        (rf"\b(?:ignore|disregard|forget|skip|override|bypass|drop) (?:all |any |every )?"
         rf"(?:of )?(?:the |your |my |these |those )?(?:\w+ )?{_BEFORE} {_RULES}\b",
         SCORE_INJECTION),
        (r"\bforget (?:everything|all) (?:you (?:were|have been) told|above|before|i said)\b",
         SCORE_INJECTION),
        (r"\byou (?:are|re) now (?:dan|an? (?:unrestricted|unfiltered|uncensored|jailbroken)"
         r"|in (?:developer|dev|god) mode|free (?:of|from) (?:all )?(?:rules|restrictions))\b",
         SCORE_INJECTION),
        (r"\bdo anything now\b", SCORE_INJECTION),
        (rf"\b(?:reveal|print|repeat|leak|output|display|dump|spell out|show me|tell me|"
         rf"give me|what (?:is|are|was|were)) (?:me )?your (?:full |entire |exact |secret )?"
         rf"{_SYSTEM_PROMPT}\b", SCORE_INJECTION),
        (r"\b(?:enable|activate|enter|switch to|turn on) (?:developer|dev|god|jailbreak|dan) "
         r"mode\b", SCORE_INJECTION),
        (r"\bpretend (?:that )?you (?:have no|are not bound by|don t have any|do not have any) "
         r"(?:restrictions|rules|guidelines|limits|filters)\b", SCORE_INJECTION),
        (r"\b(?:without|ignore|bypass|disable|turn off) (?:your |any |all )?(?:safety|content|"
         r"ethical|moderation) (?:filters?|guidelines|restrictions|rules|policies)\b",
         SCORE_INJECTION),
        (r"\bact as (?:an? )?(?:unrestricted|unfiltered|uncensored|jailbroken|evil) "
         r"(?:ai|assistant|model|chatbot|version)\b", SCORE_INJECTION),
        (rf"\b(?:reveal|print|repeat|leak|dump|show me|tell me) the (?:full |entire |exact )?"
         rf"{_SYSTEM_PROMPT}\b", SCORE_INJECTION_WEAK),
        (r"\bfrom now on you (?:will|must|are going to|shall) (?:only )?(?:answer|respond|"
         r"reply|act|behave) (?:as|without|like)\b", SCORE_INJECTION_WEAK),
        (r"\bnew (?:system )?instructions (?:follow|are)\b", SCORE_INJECTION_WEAK),
    )
]
# Chat-template markup smuggled into a message: matched on the raw text.
_ROLE_MARKUP = re.compile(
    r"<\|(?:im_start|im_end|start_header_id|system|eot_id)\|>|\[/?(?:INST|SYS)\]|<</?SYS>>"
    r"|</?\s*system\s*>|^#{2,}\s*(?:system|instruction)s?\s*:",
    re.IGNORECASE | re.MULTILINE,
)
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t",
                       "@": "a", "$": "s", "!": "i"})
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad")


def normalize(text: str) -> tuple[str, list[int]]:
    """The text for phrase matching, and for each of its characters the index it came from.

    '!' and '@' become letters only inside a word ("h@ck"), never as punctuation."""
    chars: list[str] = []
    origin: list[int] = []
    for i, char in enumerate(text):
        if char in _INVISIBLE:
            continue
        lowered = char.lower()
        if lowered in "!@$" and not (i + 1 < len(text) and text[i + 1].isalnum()):
            lowered = " "
        lowered = lowered.translate(_LEET)
        if not lowered.isalnum():
            if chars and chars[-1] != " ":
                chars.append(" ")
                origin.append(i)
            continue
        for piece in lowered:  # "İ".lower() is two characters
            chars.append(piece)
            origin.append(i)
    return "".join(chars), origin


def find_prompt_injection(text: str) -> list[Issue]:
    normalized, origin = normalize(text)
    issues = [
        _injection(text, origin[m.start()], origin[m.end() - 1] + 1, score)
        for pattern, score in _INJECTION_PHRASES
        for m in pattern.finditer(normalized)
    ]
    issues += [_injection(text, m.start(), m.end(), SCORE_INJECTION)
               for m in _ROLE_MARKUP.finditer(text)]
    return sorted(issues, key=lambda i: i.start)


def _injection(text: str, start: int, end: int, score: float) -> Issue:
    return Issue("prompt_injection", start, end, text[start:end][:80], score)


PATTERN_CHECKS: dict[str, Callable[[str], list[Issue]]] = {
    "personal_data": find_personal_data,
    "prompt_injection": find_prompt_injection,
}
