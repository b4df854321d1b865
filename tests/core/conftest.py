"""Apps built for one test, with settings of their own, on the suite's database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient

from app.main import create_app
from tests.conftest import make_settings

BuildApp = Callable[..., AbstractAsyncContextManager[tuple[Any, AsyncClient]]]


@pytest.fixture
def build_app(database_url: str, data_dir: Path) -> BuildApp:
    """`async with build_app(max_body_bytes=1024) as (app, http): ...`; routes may be added to
    `app` before the first request. Unexpected errors come back as responses, as a server's
    would, instead of being raised into the test."""

    @asynccontextmanager
    async def build(**overrides: Any) -> AsyncIterator[tuple[Any, AsyncClient]]:
        url = overrides.pop("database_url", database_url)
        application = create_app(make_settings(url, data_dir, **overrides))
        transport = ASGITransport(app=application, raise_app_exceptions=False)
        try:
            async with AsyncClient(transport=transport, base_url="http://testserver") as http:
                yield application, http
        finally:
            await application.state.login_throttle.aclose()
            await application.state.engine.dispose()

    return build
