"""Engine and sessions.

One `AsyncSession` per request; services only flush; the request boundary commits once
(see `session_dependency`). On SQLite every transaction starts with `BEGIN IMMEDIATE`:
writers queue on the busy timeout instead of failing with "database is locked" when a
read transaction tries to upgrade, which is what makes concurrent payments safe there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from app.core.config import Settings

SQLITE_BUSY_TIMEOUT_MS = 30_000
# A pooled connection idle this long is pinged before use (see `_ping_when_idle`).
IDLE_PING_SECONDS = 5.0
logger = logging.getLogger("billing_portal.db")


# Which process opens the engine decides how many connections it may hold by default.
ProcessKind = Literal["api", "runner", "cli"]


@dataclass(frozen=True)
class PoolLimits:
    size: int
    max_overflow: int

    @property
    def most(self) -> int:
        """The most connections one process opens: what the sizing formula counts."""
        return self.size + self.max_overflow


def pool_limits(settings: Settings, kind: ProcessKind) -> PoolLimits:
    """BILLING_DATABASE_POOL_SIZE / _MAX_OVERFLOW when set, else a default for the kind:

    - api (each `serve` worker process): 5 + 5. A request holds a connection for a few
      short transactions, never across a gateway call, so 5 carry steady traffic and the
      overflow absorbs bursts; more would only queue inside PostgreSQL instead of here.
    - runner (`run-scheduler`): one per charge in flight plus one to claim and one for
      housekeeping (lease renewal, settling pending payments), no overflow: its own
      concurrency already bounds what it uses.
    - cli (migrate, reconcile, create-staff ...): 2 + 2.
    """
    defaults = {
        "api": PoolLimits(5, 5),
        "runner": PoolLimits(settings.scheduler_concurrency + 2, 0),
        "cli": PoolLimits(2, 2),
    }[kind]
    return PoolLimits(
        size=settings.database_pool_size or defaults.size,
        max_overflow=(
            defaults.max_overflow
            if settings.database_max_overflow is None
            else settings.database_max_overflow
        ),
    )


def create_engine(
    settings: Settings, *, kind: ProcessKind = "cli", sqlite_foreign_keys: bool = True
) -> AsyncEngine:
    """The engine for the configured database, its pool sized for the kind of process.

    Migrations pass `sqlite_foreign_keys=False`: batch mode rebuilds a table by copy, drop
    and rename, and with foreign keys on the drop would cascade into the child tables.
    """
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        return _create_sqlite_engine(
            url, echo=settings.database_echo, foreign_keys=sqlite_foreign_keys
        )
    limits = pool_limits(settings, kind)
    logger.info(
        "database pool",
        extra={
            "process_kind": kind,
            "pool_size": limits.size,
            "max_overflow": limits.max_overflow,
            "pool_timeout_seconds": settings.database_pool_timeout_seconds,
        },
    )
    engine = create_async_engine(
        url,
        echo=settings.database_echo,
        pool_size=limits.size,
        max_overflow=limits.max_overflow,
        # A request waits this long for a free connection, then answers 503 (a pool
        # TimeoutError counts as "database unavailable").
        pool_timeout=settings.database_pool_timeout_seconds,
        # Re-open connections older than this, before a firewall or a pooler in between
        # drops them silently (0: never).
        pool_recycle=settings.database_pool_recycle_seconds or -1,
    )
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Ping a pooled connection on checkout only when it sat idle for IDLE_PING_SECONDS.

    `pool_pre_ping` costs a round trip on every checkout, i.e. on every request; a connection
    that was in use a moment ago is almost surely alive. One that idled long enough for the
    server to have restarted (or a firewall to have dropped it) is pinged, and a dead one is
    replaced: raising DisconnectionError makes the pool discard it and check out another
    (SQLAlchemy retries up to three times). A connection that dies in between anyway fails
    that one request, which answers 503 (app/core/db_unavailable.py), and the pool then
    discards every connection opened before the failure (an invalidation on disconnect).
    """

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:
            raise DisconnectionError("the pooled connection is gone") from exc


def _create_sqlite_engine(url: str, *, echo: bool, foreign_keys: bool) -> AsyncEngine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        url,
        echo=echo,
        # Each connection is a thread of its own in aiosqlite; opening one is cheap and a
        # pool would hold write locks longer than a request needs.
        poolclass=NullPool,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so BEGIN is ours to issue.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A unit of work outside a request (CLI, runner, the second half of a payment)."""
    async with sessionmaker() as session, session.begin():
        yield session


def is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def database_answers(engine: AsyncEngine) -> bool:
    """The database takes a query now (readiness)."""
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True
