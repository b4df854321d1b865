"""Ticket errors: each says what went wrong and what to do instead."""

from __future__ import annotations

from app.core.errors import Conflict, NotFound, Unprocessable


class TicketNotFound(NotFound):
    default_detail = "No such ticket."


class TicketClosed(Conflict):
    type_slug = "ticket-closed"
    title = "Ticket closed"

    def __init__(self, number: int, what: str = "can no longer be changed") -> None:
        super().__init__(
            f"Ticket #{number} is closed and {what}. Open a new ticket if you need more help."
        )


class InvalidTicketTransition(Conflict):
    type_slug = "invalid-ticket-transition"
    title = "Invalid status change"

    def __init__(self, current: str, requested: str, allowed: frozenset[str]) -> None:
        options = ", ".join(sorted(allowed)) or "none"
        super().__init__(
            f"A ticket cannot go from `{current}` to `{requested}` "
            f"(from `{current}` it can go to: {options})."
        )


class CloseThroughEndpoint(Unprocessable):
    def __init__(self) -> None:
        super().__init__(
            "A ticket is closed with POST /api/v1/tickets/{id}/close, which records the "
            "resolution notes; PATCH cannot set `closed`.",
            loc=("body", "status"),
        )


class AssigneeNotStaff(Unprocessable):
    def __init__(self) -> None:
        super().__init__(
            "The assignee must be an active staff member of your MSP.",
            loc=("body", "assignee_id"),
        )


class InvoiceNotReferable(Unprocessable):
    def __init__(self) -> None:
        super().__init__(
            "No such invoice for this client: a ticket can only refer to one of the "
            "client's own issued invoices.",
            loc=("body", "invoice_id"),
        )
