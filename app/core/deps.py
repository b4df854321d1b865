"""Request-scoped dependencies shared by every domain: settings, the session, paging."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.errors import AppError
from app.core.hooks import Hooks
from app.core.pagination import PageParams, page_params
from app.gateways.base import PaymentGateway

# The dependencies are `async def` although they never wait: FastAPI runs a plain `def`
# dependency in a worker thread, a thread hop per dependency per request.


async def get_settings_from_app(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    return sessionmaker


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: committed once after the endpoint, before the response
    is sent (scope="function"), rolled back on any error that is not an outcome to keep.

    A read (GET, HEAD) holds one connection for the whole request, so the caller's
    resolution (which commits) and the endpoint's queries share one checkout; on PostgreSQL
    it runs in autocommit, without BEGIN and COMMIT round trips. That reads exactly what a
    READ COMMITTED transaction would: each statement sees its own snapshot either way.
    Writes check out per transaction as before: they must not hold an idle connection
    across a gateway call while their short transactions take others."""
    sessionmaker = request.app.state.sessionmaker
    if request.method not in ("GET", "HEAD"):
        async with sessionmaker() as session, _unit_of_work(session):
            yield session
        return
    engine: AsyncEngine = request.app.state.engine
    async with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execution_options(isolation_level="AUTOCOMMIT")
        async with sessionmaker(bind=connection) as session, _unit_of_work(session):
            yield session


@asynccontextmanager
async def _unit_of_work(session: AsyncSession) -> AsyncIterator[None]:
    try:
        yield
    except AppError as exc:
        if exc.persist_changes:
            await session.commit()
        else:
            await session.rollback()
        raise
    except BaseException:
        await session.rollback()
        raise
    else:
        await session.commit()


async def get_hooks(request: Request) -> Hooks:
    hooks: Hooks = request.app.state.hooks
    return hooks


async def get_gateway(request: Request) -> PaymentGateway:
    gateway: PaymentGateway = request.app.state.gateway
    return gateway


SettingsDep = Annotated[Settings, Depends(get_settings_from_app)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]
PageDep = Annotated[PageParams, Depends(page_params)]
GatewayDep = Annotated[PaymentGateway, Depends(get_gateway)]
HooksDep = Annotated[Hooks, Depends(get_hooks)]
