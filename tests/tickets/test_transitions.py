"""The transition table itself, without a database."""

from __future__ import annotations

from itertools import product
from typing import get_args

import pytest

from app.tickets.errors import CloseThroughEndpoint, InvalidTicketTransition
from app.tickets.schemas import TicketStatus
from app.tickets.service import (
    CLOSABLE,
    STAFF_TRANSITIONS,
    UPDATE_TRANSITIONS,
    Author,
    status_after_change,
    status_after_update,
)

STATUSES: tuple[TicketStatus, ...] = get_args(TicketStatus)
ALLOWED = {
    ("open", "in_progress"),
    ("open", "waiting_on_client"),
    ("in_progress", "waiting_on_client"),
    ("waiting_on_client", "in_progress"),
}


def test_the_table_covers_every_status_and_never_reaches_closed() -> None:
    assert set(STAFF_TRANSITIONS) == set(STATUSES)
    assert all("closed" not in targets for targets in STAFF_TRANSITIONS.values())
    assert STAFF_TRANSITIONS["closed"] == frozenset()
    assert {(a, b) for a, targets in STAFF_TRANSITIONS.items() for b in targets} == ALLOWED
    assert frozenset({"open", "in_progress", "waiting_on_client"}) == CLOSABLE


@pytest.mark.parametrize(
    ("current", "requested"),
    [(a, b) for a, b in product(STATUSES, STATUSES) if a != "closed" and b != "closed"],
)
def test_staff_changes_between_working_states(
    current: TicketStatus, requested: TicketStatus
) -> None:
    if current == requested or (current, requested) in ALLOWED:
        assert status_after_change(current, requested) == requested
    else:
        with pytest.raises(InvalidTicketTransition) as refused:
            status_after_change(current, requested)
        assert f"from `{current}` to `{requested}`" in refused.value.detail
        assert refused.value.status == 409


@pytest.mark.parametrize("current", STATUSES)
def test_closed_is_reached_only_through_the_close_endpoint(current: TicketStatus) -> None:
    with pytest.raises(CloseThroughEndpoint) as refused:
        status_after_change(current, "closed")
    assert refused.value.status == 422
    assert "/close" in refused.value.detail


@pytest.mark.parametrize("requested", [s for s in STATUSES if s != "closed"])
def test_nothing_leaves_closed(requested: TicketStatus) -> None:
    with pytest.raises(InvalidTicketTransition):
        status_after_change("closed", requested)


@pytest.mark.parametrize(("author", "current"), list(product(("staff", "client"), STATUSES)))
def test_what_an_update_does_to_the_status(author: Author, current: TicketStatus) -> None:
    after = status_after_update(current, author)
    if (author, current) == ("client", "waiting_on_client"):
        assert after == "in_progress"
    else:
        assert after == current
    assert set(UPDATE_TRANSITIONS) == {("client", "waiting_on_client")}
