"""What the money path's steps hand each other: a reserved record with the gateway call that
settles it, and what the gateway answered."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from app.gateways.base import GatewayDeclined, PaymentGateway

R = TypeVar("R")

GatewayCall = Callable[[PaymentGateway], Awaitable[R]]


@dataclass(frozen=True, slots=True)
class Reserved(Generic[R]):
    """A payment or refund as reserved, and the call that settles it with its own idempotency
    key; no call when it is settled already (a retry that found its first attempt finished)."""

    record: Any
    call: GatewayCall[R] | None = None
    # The gateway operation the call makes ("charge" or "refund"): for the metrics.
    operation: str = "charge"


@dataclass(frozen=True, slots=True)
class Outcome(Generic[R]):
    """The gateway's answer: a result, a decline, or neither (unknown: ask again later)."""

    result: R | None = None
    declined: GatewayDeclined | None = None
