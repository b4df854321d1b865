"""The screen every request passes before any route sees it: the body and the query string
are read once, and refused (nothing stored, nothing logged) when they hold

- a card number in any string, key or value, of a JSON body, a form body (sign-in included,
  url-encoded or multipart), the query string, or a header that is stored (`X-Audit-Reason`,
  `Idempotency-Key`): 422 `card-number-refused`;
- a control character other than tab, newline and carriage return in any of those strings
  (NUL first: PostgreSQL cannot store it, and logs must not carry it): 422 `validation-error`;
  tab and newline are refused in short fields by the schemas (app/core/schemas.py);
- JSON nested deeper than MAX_JSON_DEPTH, measured without recursion before parsing (the
  parser itself recurses): 400 `malformed-body`;
- a JSON or form body that is not UTF-8: 400 `malformed-body`.

Every walk here is a loop over an explicit stack, so no input can exhaust the interpreter's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from app.core.card_numbers import contains_card_number

MAX_JSON_DEPTH = 32
# C0 controls but tab, newline and carriage return; DEL; C1 controls.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = bytes.maketrans(b"", b"")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")

CARD_DETAIL = (
    "A card number was found in the request. Card details are never accepted: tokenize the "
    "card with the payment gateway and send its token."
)


@dataclass(frozen=True)
class Refusal:
    status: int
    slug: str
    title: str
    detail: str
    loc: tuple[str | int, ...]


def _card(where: str) -> Refusal:
    return Refusal(422, "card-number-refused", "Card number refused", CARD_DETAIL, (where,))


def _malformed(detail: str) -> Refusal:
    return Refusal(400, "malformed-body", "Malformed body", detail, ("body",))


def _screen_strings(strings: Iterator[tuple[tuple[str | int, ...], str]]) -> Refusal | None:
    for loc, text in strings:
        if contains_card_number(text):
            return _card(str(loc[0]))
        if CONTROL_CHARACTERS.search(text):
            return Refusal(
                422,
                "validation-error",
                "Validation error",
                f"{'.'.join(map(str, loc))}: control characters (NUL ...) are not accepted.",
                loc,
            )
    return None


def json_depth(body: bytes) -> int:
    """How deeply `body`'s arrays and objects nest, counted without parsing it (brackets
    inside strings are not structure)."""
    structure = _JSON_STRING.sub(b'""', body).translate(_BRACKETS, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in structure:
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _json_strings(value: Any) -> Iterator[tuple[tuple[str | int, ...], str]]:
    stack: list[tuple[tuple[str | int, ...], Any]] = [(("body",), value)]
    while stack:
        loc, item = stack.pop()
        if isinstance(item, str):
            yield loc, item
        elif isinstance(item, dict):
            for key, child in item.items():
                yield (*loc, key), key
                stack.append(((*loc, key), child))
        elif isinstance(item, list):
            stack.extend(((*loc, index), child) for index, child in enumerate(item))


def _pairs(text: str, where: str) -> Iterator[tuple[tuple[str | int, ...], str]]:
    for key, value in parse_qsl(text, keep_blank_values=True, errors="strict"):
        yield (where, key), key
        yield (where, key), value


# Headers whose values are stored (the audit trail, payments' idempotency keys).
STORED_HEADERS = ("x-audit-reason", "idempotency-key")


def screen_headers(headers: dict[str, str]) -> Refusal | None:
    for name in STORED_HEADERS:
        # Header bytes arrive as latin-1; X-Audit-Reason is UTF-8 (full-width digits ...).
        value = headers.get(name, "").encode("latin-1").decode("utf-8", errors="replace")
        if contains_card_number(value):
            return Refusal(
                422, "card-number-refused", "Card number refused", CARD_DETAIL, ("header", name)
            )
    return None


def screen_query(query_string: bytes) -> Refusal | None:
    try:
        return _screen_strings(_pairs(query_string.decode("latin-1"), "query"))
    except UnicodeDecodeError:
        return Refusal(
            422,
            "validation-error",
            "Validation error",
            "query: the query string is not UTF-8 once percent-decoded.",
            ("query",),
        )


def _multipart_fields(body: bytes, content_type: str) -> Iterator[tuple[str, bytes]]:
    """(headers, content) of each part; files are kept as bytes."""
    match = re.search(r'boundary="?([^";]+)"?', content_type, re.IGNORECASE)
    if not match:
        return
    for part in body.split(b"--" + match.group(1).encode("latin-1")):
        head, sep, content = part.partition(b"\r\n\r\n")
        if sep:
            yield head.decode("latin-1"), content.removesuffix(b"\r\n")


def screen_body(body: bytes, content_type: str) -> Refusal | None:
    media = content_type.split(";")[0].strip().lower()
    if "json" in media:
        if json_depth(body) > MAX_JSON_DEPTH:
            return _malformed(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return _malformed("the body is not UTF-8.")
        try:
            parsed = json.loads(text)
        except ValueError:
            return None  # the route answers malformed JSON with its own 422
        return _screen_strings(_json_strings(parsed))
    if media == "application/x-www-form-urlencoded":
        try:
            return _screen_strings(_pairs(body.decode("utf-8"), "body"))
        except UnicodeDecodeError:
            return _malformed("the body is not UTF-8.")
    if media == "multipart/form-data":
        for head, content in _multipart_fields(body, content_type):
            if "filename=" in head.lower():
                # A file (the logo) is bytes, not text; a card number written in it is still
                # refused (its digits would have to line up by chance: about never).
                if contains_card_number(content.decode("utf-8", errors="replace")):
                    return _card("body")
                continue
            try:
                text = content.decode("utf-8")
            except UnicodeDecodeError:
                return _malformed("a form field is not UTF-8.")
            refusal = _screen_strings(iter([(("body",), text)]))
            if refusal is not None:
                return refusal
    return None
