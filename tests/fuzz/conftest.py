"""A live server for schemathesis: the app served by uvicorn on loopback from its own thread
and event loop (schemathesis calls it over HTTP, synchronously), on the suite's database, with
one tenant's estate in it: staff, a client user, an API key with every scope, and objects of
every kind for the stateful phase to start from."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn
from httpx import AsyncClient
from sqlalchemy import delete

from app.core.config import Settings
from app.main import create_app
from app.models import Base
from tests.conftest import make_settings
from tests.factories import Factory
from tests.openapi.live import loopback_socket, origin_of
from tests.tenancy.estate import TenantEstate, tenant_estate

T = TypeVar("T")


@dataclass
class LiveServer:
    origin: str
    app: Any
    loop: asyncio.AbstractEventLoop
    factory: Factory
    estate: TenantEstate

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's loop (where the app's database connections live)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def fresh_headers(self, role: str) -> dict[str, str]:
        """A caller's headers, with a new access token for a person: a fuzzed logout ends only
        the session it was sent with, never the callers the rest of the run uses."""
        if role == "api_key":
            return {"Authorization": f"Bearer {self.estate.key_secret}"}
        person = self.estate.staff if role == "staff" else self.estate.clients[0].contact
        return {"Authorization": f"Bearer {self.factory.token_for(person.user)}"}


# Module-scoped: torn down (tables emptied) before any other test module runs.
@pytest.fixture(scope="module")
def live_server(
    database_url: str, data_dir: Path, migrated: None, settings: Settings
) -> Iterator[LiveServer]:
    app = create_app(make_settings(database_url, data_dir))
    sock = loopback_socket()
    origin = origin_of(sock)
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(
        target=loop.run_until_complete, args=(server.serve(sockets=[sock]),), daemon=True
    )
    thread.start()

    async def seed() -> tuple[Factory, TenantEstate]:
        async with AsyncClient(base_url=origin, timeout=30) as http:
            factory = Factory(app.state.sessionmaker, app.state.settings, http)
            return factory, await tenant_estate(http, factory, "Fuzz MSP")

    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            threading.Event().wait(0.01)
        factory, estate = asyncio.run_coroutine_threadsafe(seed(), loop).result(timeout=120)
        live = LiveServer(origin, app, loop, factory, estate)
        yield live
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        loop.run_until_complete(_empty_and_close(app))
        loop.close()
        sock.close()


async def _empty_and_close(app: Any) -> None:
    """Leave the database as the other tests expect it: empty."""
    async with app.state.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(delete(table))
    await app.state.engine.dispose()
