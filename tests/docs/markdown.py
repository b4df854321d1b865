"""Reading Markdown the way GitHub renders it: the links a document makes, and the anchors its
headings get, so a test can tell a link that leads nowhere."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
# [text](target) and ![alt](target); the text may hold `code` and brackets one level deep.
_INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)"
)
_REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.MULTILINE)
_HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Link:
    source: Path
    target: str
    line: int


def _without_code(text: str) -> str:
    """The text with fenced blocks and code spans blanked (same length, same line numbers)."""

    def blank(match: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", match.group(0))

    return _CODE_SPAN.sub(blank, _FENCE.sub(blank, text))


def links(path: Path) -> list[Link]:
    text = _without_code(path.read_text(encoding="utf-8"))
    found = []
    for pattern in (_INLINE_LINK, _REFERENCE_DEF):
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(Link(path, match.group(1), line))
    return found


def is_external(target: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target)) or target.startswith("//")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, markup and punctuation dropped, spaces
    to hyphens (`Sizing for 10,000 clients` → `sizing-for-10000-clients`)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a link may name in the document: its headings' (with GitHub's -1, -2 ...
    for repeats) and explicit `<a id=...>` ones."""
    text = path.read_text(encoding="utf-8")
    seen: Counter[str] = Counter()
    found = set(_HTML_ANCHOR.findall(text))
    for match in _HEADING.finditer(_FENCE.sub("", text)):
        slug = github_slug(match.group(2))
        found.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
        seen[slug] += 1
    return found


def headings(path: Path, level: int) -> list[str]:
    """The text of every heading of exactly this level, outside code blocks."""
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    return [m.group(2) for m in _HEADING.finditer(text) if len(m.group(1)) == level]
