"""The documentation stays true to the repository: every relative link in README.md and docs/
leads to a file (and heading) that exists inside the repository; every problem type, setting
and event type the code has is documented, and nothing documented is missing from the code;
the webhook signature example verifies what the service sends."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import unquote

import pytest
from httpx import AsyncClient

from app.cli import PROJECT_ROOT
from app.core.errors import PROBLEM_TYPES_URL, problem_type_uri
from app.webhooks.secrets import new_secret, signature_header
from tests.docs.catalogue import documents, event_types, problem_slugs, read, setting_names
from tests.docs.markdown import anchors, github_slug, headings, is_external, links

ERRORS = PROJECT_ROOT / "docs" / "errors.md"
OPERATIONS = PROJECT_ROOT / "docs" / "operations.md"
WEBHOOKS = PROJECT_ROOT / "docs" / "api" / "webhooks.md"


def broken_links(paths: Iterable[Path], root: Path) -> list[str]:
    """Every relative link among `paths` that leaves `root`, names a missing file, or names an
    anchor its Markdown target does not have."""
    broken = []
    for path in paths:
        for link in links(path):
            if is_external(link.target):
                continue
            where = f"{path.relative_to(root)}:{link.line}: {link.target}"
            file_part, _, anchor = link.target.partition("#")
            target = (path.parent / unquote(file_part)).resolve() if file_part else path
            if not target.is_relative_to(root.resolve()):
                broken.append(f"{where} (outside the repository)")
            elif not target.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and target.suffix == ".md" and anchor not in anchors(target):
                broken.append(f"{where} (no such heading)")
    return broken


def test_relative_links_lead_to_files_and_headings_in_the_repository() -> None:
    broken = broken_links(documents(), PROJECT_ROOT)
    assert not broken, "links that lead nowhere:\n" + "\n".join(broken)


def test_the_link_check_finds_what_is_broken(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "there.md").write_text("# A heading, with `code`\n\n## Again\n## Again\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/there.md#a-heading-with-code) [ok](docs/there.md#again-1) [ok](#top)\n"
        "# Top\n"
        "[gone](docs/missing.md) [bad anchor](docs/there.md#nowhere) [out](../elsewhere.md)\n"
        "`[not a link](nowhere.md)` [web](https://example.com/x.md)\n"
        "```\n[in a code block](nowhere.md)\n```\n"
        "[ref]: docs/also-missing.md\n"
    )
    found = broken_links([page], tmp_path)
    assert [entry.split(": ", 1)[1] for entry in found] == [
        "docs/missing.md (no such file)",
        "docs/there.md#nowhere (no such heading)",
        "../elsewhere.md (outside the repository)",
        "docs/also-missing.md (no such file)",
    ]


def test_github_slugs() -> None:
    assert github_slug("Sizing for 10,000 clients") == "sizing-for-10000-clients"
    assert github_slug("`ETag` and `If-Match`") == "etag-and-if-match"
    assert github_slug("The test gateway's tokens") == "the-test-gateways-tokens"


def test_readme_links_into_the_docs() -> None:
    targets = {link.target.partition("#")[0] for link in links(PROJECT_ROOT / "README.md")}
    assert {"docs/README.md", "docs/errors.md", "docs/architecture.md"} <= targets
    assert "docs/operations.md" in targets
    assert not any("shared/" in t for t in targets), targets


# --- problem types ------------------------------------------------------------------------


def documented_problem_types() -> list[str]:
    return headings(ERRORS, 3)


def test_every_problem_type_the_code_can_answer_is_documented() -> None:
    missing = problem_slugs() - set(documented_problem_types())
    assert not missing, f"add a `### <slug>` section to docs/errors.md for: {sorted(missing)}"


def test_every_documented_problem_type_exists_in_the_code() -> None:
    documented = documented_problem_types()
    assert len(documented) == len(set(documented)), "a problem type is documented twice"
    stale = set(documented) - problem_slugs()
    assert not stale, f"docs/errors.md documents types the code never answers: {sorted(stale)}"


def test_problem_types_point_into_the_errors_document() -> None:
    assert PROBLEM_TYPES_URL.endswith("/docs/errors.md")
    for slug in problem_slugs():
        uri = problem_type_uri(slug)
        assert uri == f"{PROBLEM_TYPES_URL}#{slug}"
        assert uri.partition("#")[2] in anchors(ERRORS), uri


async def test_answered_problem_types_are_sections_of_the_errors_document(
    client: AsyncClient,
) -> None:
    answers = [
        await client.get("/api/v1/no-such-thing"),  # 404
        await client.delete("/api/v1/clients"),  # 405
        await client.get("/api/v1/me"),  # 401
        await client.post("/api/v1/auth/token", content=b"\xff", headers={"content-type": "x"}),
    ]
    for answer in answers:
        problem_type = answer.json()["type"]
        base, _, anchor = problem_type.partition("#")
        assert base == PROBLEM_TYPES_URL, problem_type
        assert anchor in anchors(ERRORS), problem_type


# --- settings and events ------------------------------------------------------------------


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_every_setting_is_in_the_operations_settings_table() -> None:
    table = _section(read("docs/operations.md"), "## Settings")
    missing = sorted(name for name in setting_names() if f"`{name}`" not in table)
    assert not missing, f"add to the table under '## Settings' in docs/operations.md: {missing}"


def test_every_documented_setting_exists() -> None:
    table = _section(read("docs/operations.md"), "## Settings")
    documented = set(re.findall(r"`(BILLING_[A-Z0-9_]+|DATABASE_URL)`", table))
    stale = documented - setting_names()
    assert not stale, f"docs/operations.md documents settings that do not exist: {sorted(stale)}"


def _event_rows() -> set[str]:
    return set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", read("docs/api/webhooks.md"), re.M))


def test_every_event_type_is_in_the_webhooks_guide() -> None:
    missing = event_types() - _event_rows()
    assert not missing, f"add rows to docs/api/webhooks.md's event types: {sorted(missing)}"


def test_every_documented_event_type_exists() -> None:
    stale = _event_rows() - event_types()
    assert not stale, f"docs/api/webhooks.md lists event types that do not exist: {sorted(stale)}"


# --- the signature example ----------------------------------------------------------------


def _documented_verifier() -> Callable[..., bool]:
    blocks = re.findall(r"^```python\n(.*?)^```", WEBHOOKS.read_text(encoding="utf-8"), re.M | re.S)
    source = next(block for block in blocks if "def verify_webhook" in block)
    namespace: dict[str, object] = {}
    exec(compile(source, str(WEBHOOKS), "exec"), namespace)  # noqa: S102 - our own document
    verify = namespace["verify_webhook"]
    assert callable(verify)
    return verify


@pytest.mark.parametrize("rotated", [False, True])
def test_the_documented_signature_check_accepts_what_the_service_signs(rotated: bool) -> None:
    verify = _documented_verifier()
    current, previous = new_secret(), new_secret()
    signing = [current, previous] if rotated else [current]
    body = b'{"id":"evt","type":"invoice.paid","timestamp":"2026-12-01T08:00:00Z","data":{}}'
    now = int(time.time())
    headers = {
        "webhook-id": "0193a3c4-5e6f-7a8b-9c0d-1e2f3a4b5c6d",
        "webhook-timestamp": str(now),
        "webhook-signature": signature_header(
            signing, "0193a3c4-5e6f-7a8b-9c0d-1e2f3a4b5c6d", now, body
        ),
    }
    assert verify(current, headers, body)
    assert verify(previous, headers, body) is rotated
    assert not verify(current, headers, body + b" ")
    assert not verify(current, {**headers, "webhook-id": "another"}, body)
    assert not verify(new_secret(), headers, body)
    stale = now - 3600
    old = {
        **headers,
        "webhook-timestamp": str(stale),
        "webhook-signature": signature_header(signing, headers["webhook-id"], stale, body),
    }
    assert not verify(current, old, body)
