"""Card numbers in free text: found (to refuse a request that carries one) and redacted (so
that no log line ever holds one).

A card number is 13 to 19 digits passing the Luhn check, written together or grouped as
people type them, by spaces, dashes, dots or slashes (`4111 1111 1111 1111`,
`4111-1111-1111-1111`). Ids are never card numbers: a UUID's dash-separated groups join
into a Luhn-valid run of digits about once in 400, and so can a request id's 32 hex digits,
so both are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

REDACTED = "[card number redacted]"

_SEPARATOR = r"[ \t./-]{1,2}"
_CARD_CANDIDATE = re.compile(rf"(?<!\d)\d(?:(?:{_SEPARATOR})?\d){{12,18}}(?!\d)")
_ID = re.compile(
    r"(?<![0-9A-Za-z])(?:[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}"
    r"|(?=[0-9]*[A-Fa-f])[0-9A-Fa-f]{32})(?![0-9A-Za-z])"
)
_NOT_DIGIT = re.compile(r"\D")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card_spans(text: str) -> Iterator[tuple[int, int]]:
    # Blank the ids out (same length, so the spans still index `text`).
    masked = _ID.sub(lambda m: " " * len(m.group()), text)
    for match in _CARD_CANDIDATE.finditer(masked):
        digits = _NOT_DIGIT.sub("", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            yield match.span()


def contains_card_number(text: str) -> bool:
    return next(_card_spans(text), None) is not None


def redact_card_numbers(text: str) -> str:
    """`text` with every card number replaced by REDACTED (the same object when none)."""
    spans = list(_card_spans(text))
    if not spans:
        return text
    out, last = [], 0
    for start, end in spans:
        out += [text[last:start], REDACTED]
        last = end
    out.append(text[last:])
    return "".join(out)
