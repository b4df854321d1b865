"""Real HTTP servers on loopback for the consumers' tests (a generated client, a browser):
uvicorn serving an ASGI app on a free port, in the test's own event loop, so the app keeps
the suite's database connections."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

STARTUP_POLLS = 1000  # of 10 ms: a server that has not started in 10 s is broken


def loopback_socket() -> socket.socket:
    """A socket bound to a free loopback port (handed to uvicorn: no race for the port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def origin_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()
    return f"http://{host}:{port}"


@asynccontextmanager
async def serving(app: Any, sock: socket.socket | None = None) -> AsyncIterator[str]:
    """Serve `app` on `sock` (a fresh loopback socket by default); yields its origin. The app's
    lifespan is not run: whoever built the app closes it."""
    sock = sock or loopback_socket()
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(STARTUP_POLLS):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if task.done():
            task.result()  # the server failed to start: raise why
        assert server.started, "uvicorn did not start"
        yield origin_of(sock)
    finally:
        server.should_exit = True
        await task
        sock.close()
