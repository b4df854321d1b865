"""Failure injection for the fake gateway (per instance, never shared through the ledger)::

gateway.fail_next()                                  # next charge(): timeout, nothing done
gateway.fail_next(2, mode="error", operation="any")  # next two calls of any kind: 5xx-like
gateway.fail_next(mode="lost_response")              # next charge() IS recorded, then times out
gateway.fail_next(2, mode="rate_limited", retry_after=0.5)  # two HTTP 429s, nothing done
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from app.gateways.base import GatewayRateLimited, GatewayUnavailable

FailureMode = Literal["timeout", "error", "lost_response", "rate_limited"]
FailureOperation = Literal["charge", "refund", "attach", "customer", "get_charge", "any"]


@dataclass(slots=True)
class _PendingFailure:
    remaining: int
    mode: FailureMode
    operation: FailureOperation
    retry_after: float | None


class FailurePlan:
    """The failures queued for the next calls, in order."""

    def __init__(self) -> None:
        self._pending: list[_PendingFailure] = []

    def add(
        self,
        count: int,
        mode: FailureMode,
        operation: FailureOperation,
        retry_after: float | None = None,
    ) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        if mode not in get_args(FailureMode) or operation not in get_args(FailureOperation):
            raise ValueError(f"unknown failure mode/operation: {mode!r}/{operation!r}")
        self._pending.append(_PendingFailure(count, mode, operation, retry_after))

    def clear(self) -> None:
        self._pending.clear()

    def take(self, operation: FailureOperation) -> bool:
        """Raise the failure due for this call, if any; True when its response must be lost
        (the operation happens, then the caller sees a timeout)."""
        for failure in self._pending:
            if failure.operation in (operation, "any"):
                failure.remaining -= 1
                if failure.remaining == 0:
                    self._pending.remove(failure)
                if failure.mode == "error":
                    raise GatewayUnavailable(
                        f"fake gateway: upstream error during {operation}", code="upstream_error"
                    )
                if failure.mode == "timeout":
                    raise timeout(operation)
                if failure.mode == "rate_limited":  # like HTTP 429: refused, nothing done
                    raise GatewayRateLimited(
                        f"fake gateway: too many requests during {operation}",
                        retry_after=failure.retry_after,
                    )
                return True
        return False


def timeout(operation: str) -> GatewayUnavailable:
    # A lost response must look exactly like a timeout: the caller cannot tell them apart.
    return GatewayUnavailable(f"fake gateway: timed out during {operation}", code="timeout")
