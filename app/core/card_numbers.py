"""Card numbers in free text: found (to refuse a request that carries one) and redacted (so
that no log line ever holds one).

A card number is 13 to 19 digits passing the Luhn check, however it is written: together,
or in groups joined by any non-alphanumeric characters (`4111 1111 1111 1111`,
`4111.1111/1111_1111`, `4111 - 1111 + ...`, tabs, newlines, NUL, no-break or full-width
spaces), in ASCII or any other decimal digits (full-width ones, U+FF10 to U+FF19). Whoever
wants a card number through cannot re-space it out of sight; a careless client is told
before anything is stored.

False positives are kept rare without opening a way round:
- a separator is at most 3 characters (`" - "`): numbers further apart are separate numbers;
- a card starts with the digit of a card network (3, 4, 5, 6, or 2221-2720 for Mastercard's
  2-series), so dates (`2024-01-15 10:30`), phone numbers and most references are not cards;
- a run longer than 19 digits is one long number unless it is grouped: then every window of
  whole groups is tried (a card followed by other digits is still found);
- ids are never card numbers: a UUID's groups join into a Luhn-valid run about once in 400,
  and so can a request id's 32 hex digits, so both are skipped.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate

REDACTED = "[card number redacted]"

MIN_DIGITS, MAX_DIGITS = 13, 19
# A character escaped as repr and JSON write them (`\x00`, `\u00a0`, `\t`): SQL parameters
# reach the log through repr, so a NUL between the groups arrives as `\x00`. Escapes are
# masked as runs of NUL, and a run of NUL counts as one separator.
_ESCAPE = re.compile(r"\\(?:x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|[ntr])")
# One or more digits (any script: \d is Unicode-aware), groups joined by up to 3 characters
# that are neither letters nor digits (`[\W_]`: \W alone keeps the underscore a letter).
# The alternatives never overlap and the NUL run is possessive: no input backtracks.
_RUN = re.compile(r"(?<!\d)\d+(?:(?:\x00++|[^\w\x00]|_){1,3}\d+)*+")
_GROUP = re.compile(r"\d+")
_ID = re.compile(
    r"(?<![0-9A-Za-z])(?:[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}"
    r"|(?=[0-9]*[A-Fa-f])[0-9A-Fa-f]{32})(?![0-9A-Za-z])"
)


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


def _network_prefix(digits: str) -> bool:
    if digits[0] in "3456":
        return True
    return digits[0] == "2" and 2221 <= int(digits[:4]) <= 2720


def is_card_number(digits: str) -> bool:
    """`digits` (ASCII) is a whole card number: length, network and check digit."""
    return (
        MIN_DIGITS <= len(digits) <= MAX_DIGITS and _network_prefix(digits) and luhn_valid(digits)
    )


def _ascii(group: str) -> str:
    return group if group.isascii() else "".join(str(unicodedata.decimal(c)) for c in group)


_PLAIN = bytes.maketrans(b"0123456789", bytes(range(10)))
_DOUBLE = bytes.maketrans(b"0123456789", bytes([0, 2, 4, 6, 8, 1, 3, 5, 7, 9]))


def _cards_in_run(run: str) -> Iterator[tuple[int, int]]:
    """The spans (within `run`) of the card numbers made of whole groups of `run`.

    A run can be long (`4 4 4 4 ...`, a megabyte of it), so each window of groups costs O(1):
    prefix sums of the Luhn weights of both parities, and the digit count at each group end.
    """
    groups = [(m.start(), m.end(), _ascii(m.group())) for m in _GROUP.finditer(run)]
    digits = "".join(g[2] for g in groups)
    ends = list(accumulate(len(g[2]) for g in groups))  # digit count after each group
    # sums[k][p]: the Luhn sum of digits[:p] when the digits at index parity k are doubled
    # (built with bytes operations: a run may be a megabyte long).
    plain = digits.encode().translate(_PLAIN)
    doubled = digits.encode().translate(_DOUBLE)
    sums = []
    for parity in (0, 1):
        weights = bytearray(plain)
        weights[parity::2] = doubled[parity::2]
        sums.append([0, *accumulate(weights)])
    first = 0
    while first < len(groups):
        begin = ends[first] - len(groups[first][2])
        if digits[begin] in "23456":
            last = bisect_left(ends, begin + MIN_DIGITS, lo=first)
            while last < len(groups) and ends[last] - begin <= MAX_DIGITS:
                end = ends[last]
                # The rightmost digit is not doubled: those at its other parity are.
                parity = (end - 2) % 2
                total = sums[parity][end] - sums[parity][begin]
                if total % 10 == 0 and _network_prefix(digits[begin:end]):
                    yield groups[first][0], groups[last][1]
                    break
                last += 1
            else:
                first += 1
                continue
            first = last + 1
            continue
        first += 1


def _card_spans(text: str) -> Iterator[tuple[int, int]]:
    # Ids become letters (same length, so the spans still index `text`), which end a run.
    masked = _ID.sub(lambda m: "x" * len(m.group()), text)
    masked = _ESCAPE.sub(lambda m: "\x00" * len(m.group()), masked)
    for match in _RUN.finditer(masked):
        for start, end in _cards_in_run(match.group()):
            yield match.start() + start, match.start() + end


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
