"""Rendering a kind's message from its templates: subject, plain text and HTML.

Templates see only what their context carries; callers build the context from the API's own
representations (which hold no card number, token or password), and links from
BILLING_PUBLIC_URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app.core.config import Settings
from app.core.money import format_amount

TEMPLATES = Path(__file__).parent / "templates"
# Without BILLING_PUBLIC_URL the links point at a local portal (development).
LOCAL_PORTAL = "http://localhost:8000"

SUBJECTS: dict[str, str] = {
    "invitation": "You are invited to {{ tenant_name }}'s billing portal",
    "password_reset": "Reset your password for {{ tenant_name }}",
    "invoice_issued": "Invoice {{ invoice.number }} from {{ tenant_name }}",
    "payment_receipt": "Receipt: {{ money(payment.amount, payment.currency) }} paid",
    "payment_failed": "Your payment of {{ money(payment.amount, payment.currency) }} failed",
    "autopay_upcoming": "{{ money(scheduled.amount, scheduled.currency) }} will be charged on "
    "{{ scheduled.scheduled_for }}",
    "scheduled_payment_changed": "A scheduled payment was {{ change }}",
    "card_expiring": "Your {{ card.brand }} card expires soon",
    "ticket_updated": "New reply on ticket #{{ ticket.number }}: {{ ticket.subject }}",
    "autopay_summary": "AutoPay run: {{ succeeded }} paid, {{ failed }} failed, "
    "{{ retrying }} to retry",
}


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)
_env.globals["money"] = format_amount
# Subjects are a mail header, not HTML: escaping would show "&amp;" in a company name.
_plain = Environment(undefined=StrictUndefined, autoescape=False)  # noqa: S701
_plain.globals["money"] = format_amount


def public_link(settings: Settings, path: str) -> str:
    """An absolute link into the portal: `path` starts with a slash."""
    return (settings.public_url or LOCAL_PORTAL) + path


def render(kind: str, context: dict[str, Any]) -> Rendered:
    subject = _plain.from_string(SUBJECTS[kind]).render(context)
    return Rendered(
        subject=" ".join(subject.split())[:300],
        text=_env.get_template(f"{kind}.txt").render(context),
        html=_env.get_template(f"{kind}.html").render(context),
    )
