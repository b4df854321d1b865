"""Whether an error means "the database cannot be reached right now".

Such an error is the database's state, not the request's fault nor a bug: the HTTP layer
answers it with 503 and `Retry-After`, and a background worker waits and tries again. The
drivers disagree on how they say it, so this one function knows every shape seen from them:

- asyncpg while connecting raises the socket's own `ConnectionRefusedError` (or another
  `OSError`, `TimeoutError` on a black-holed host) unwrapped;
- asyncpg's server errors come wrapped by SQLAlchemy (`DBAPIError.orig`, whose `__cause__`
  is asyncpg's exception), and carry a SQLSTATE: connection exceptions (class 08),
  "terminating connection due to administrator command" (57P01), "the database system is
  starting up / shutting down" (57P03), too many clients (53300), a database that is "not
  currently accepting connections" (55000 with that message), and a read-only transaction
  (25006), which is what writes meet while a failover turns the primary into a standby;
- a connection that broke mid-query is a `DBAPIError` with `connection_invalidated`;
- a pool with no free connection after `pool_timeout` raises SQLAlchemy's `TimeoutError`;
- SQLite says "database is locked" once its busy timeout has passed.
"""

from __future__ import annotations

import errno
import socket
import sqlite3

from sqlalchemy import exc as sa_exc

_UNAVAILABLE_SQLSTATES = {
    "57P01": "administrator shutdown",
    "57P02": "crash shutdown",
    "57P03": "starting up or shutting down",
    "53300": "too many connections",
    "25006": "read-only (failover)",
}
_UNREACHABLE_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EPIPE,
    errno.ETIMEDOUT,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.EHOSTDOWN,
    errno.ENETDOWN,
}
_SQLITE_UNAVAILABLE = ("database is locked", "database is busy", "unable to open database file")
_CHAIN_LIMIT = 8


def _chain(exc: BaseException) -> list[BaseException]:
    """The error, what SQLAlchemy wrapped (`orig`) and what that was raised from."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(found) < _CHAIN_LIMIT and current not in found:
        found.append(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return found


def _reason_of_one(exc: BaseException) -> str | None:
    if isinstance(exc, sa_exc.TimeoutError):
        return "connection pool exhausted"
    if isinstance(exc, sa_exc.DisconnectionError):
        return "connection lost"
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return "connection lost"
    if isinstance(exc, sa_exc.InterfaceError) and "closed" in str(exc).lower():
        return "connection closed"
    if isinstance(exc, socket.gaierror):
        return "database host not found"
    if isinstance(exc, TimeoutError):
        return "connect timeout"
    if isinstance(exc, ConnectionError) or (
        isinstance(exc, OSError) and exc.errno in _UNREACHABLE_ERRNOS
    ):
        return "connection refused" if isinstance(exc, ConnectionRefusedError) else "unreachable"
    if isinstance(exc, sqlite3.OperationalError):
        message = str(exc).lower()
        return next((m for m in _SQLITE_UNAVAILABLE if m in message), None)
    sqlstate = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(sqlstate, str):
        if sqlstate.startswith("08"):
            return "connection failure"
        if sqlstate in _UNAVAILABLE_SQLSTATES:
            return _UNAVAILABLE_SQLSTATES[sqlstate]
        if sqlstate == "55000" and "not currently accepting connections" in str(exc):
            return "not accepting connections"
    return None


def database_unavailable_reason(exc: BaseException) -> str | None:
    """A short phrase for the log ("connection refused", "starting up or shutting down" ...)
    when `exc` means the database is unavailable; None for every other error."""
    for link in _chain(exc):
        reason = _reason_of_one(link)
        if reason:
            return reason
    return None


def is_database_unavailable(exc: BaseException) -> bool:
    return database_unavailable_reason(exc) is not None
