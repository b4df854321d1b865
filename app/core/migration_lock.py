"""One migrator at a time, so replicas that start together do not race on the schema.

Every `billing-portal serve` migrates before it serves; started together on an empty
database they used to race on creating `alembic_version` and all but one died. Under this
lock the first migrates and the others wait, then find the database at head and do nothing.

- PostgreSQL: a session-level advisory lock on a fixed key, held by the migration's own
  connection (released by the server if that process dies).
- SQLite: an exclusive `flock` on a file beside the database. Every transaction there
  already begins IMMEDIATE, which serializes the migrators too, but only for the 30 s busy
  timeout; the file lock waits as long as the migration takes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection

logger = logging.getLogger("billing_portal.migrations")

# A fixed 64-bit key (PostgreSQL's bigint): the first 8 bytes of
# sha256(b"billing-portal migrations"), so no other application's lock is likely to share it.
MIGRATION_LOCK_KEY = 0x241597AD0526E2C6


@contextmanager
def migration_lock(connection: Connection) -> Iterator[None]:
    """Hold the migration lock for the body; `connection` has no transaction open on exit."""
    if connection.dialect.name == "postgresql":
        with _postgres_advisory_lock(connection):
            yield
    elif connection.dialect.name == "sqlite" and _sqlite_file(connection) is not None:
        with _file_lock(Path(f"{_sqlite_file(connection)}.migrate-lock")):
            yield
    else:
        yield


@contextmanager
def _postgres_advisory_lock(connection: Connection) -> Iterator[None]:
    key = {"key": MIGRATION_LOCK_KEY}
    if not connection.execute(text("SELECT pg_try_advisory_lock(:key)"), key).scalar():
        logger.info("another process is migrating the database; waiting for it to finish")
        connection.execute(text("SELECT pg_advisory_lock(:key)"), key)
    # Close the lock's own transaction, so the migrations manage theirs as they always have.
    connection.commit()
    try:
        yield
    finally:
        if connection.in_transaction():
            connection.rollback()
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
        connection.commit()


def _sqlite_file(connection: Connection) -> str | None:
    database = connection.engine.url.database
    return database if database and database != ":memory:" else None


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: BEGIN IMMEDIATE alone serializes the migrators
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("another process is migrating the database; waiting for it to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
