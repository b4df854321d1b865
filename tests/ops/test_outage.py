"""A database outage under traffic, end to end: `billing-portal serve` on a PostgreSQL
cluster of the test's own, clients on keep-alive connections, the cluster stopped and
started again. While it is down every answer is 503 problem+json with Retry-After on the
same connection (none is reset); once it is back the server recovers by itself."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from app.core.errors import problem_type_uri
from tests.ops.conftest import StartServer
from tests.ops.private_postgres import PrivatePostgres
from tests.ops.serve_process import Server, connection_of, process_env, run_cli

EMAIL = "ops@outage.example"
PASSWORD = "a long outage password"
REQUESTS_WHILE_DOWN = 15
RECOVERY_ATTEMPTS = 600  # 0.05 s apart: the first pooled connections are re-made on demand


@pytest.fixture
def server(private_postgres: PrivatePostgres, tmp_path: Path, serve: StartServer) -> Server:
    database = private_postgres.create_database("outage")
    env = process_env(private_postgres.url(database), tmp_path)
    created = run_cli(env, "create-staff", "--email", EMAIL, "--password", PASSWORD)
    assert created.returncode == 0, created.stderr
    server = serve(env, tmp_path)
    server.wait_healthy()
    return server


class KeepAliveClient:
    """One HTTP/1.1 connection, reused for every request; remembers which it was."""

    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=30,
        )
        self.connections: set[object] = set()

    def get_me(self) -> httpx.Response:
        response = self.http.get("/api/v1/me")
        self.connections.add(connection_of(response))
        assert "close" not in response.headers.get("connection", "").lower()
        return response


def test_outage_answers_503_on_the_same_connections_and_recovers(
    server: Server, private_postgres: PrivatePostgres
) -> None:
    signed_in = httpx.post(
        f"{server.base_url}/api/v1/auth/token",
        data={"username": EMAIL, "password": PASSWORD},
    )
    assert signed_in.status_code == 200, signed_in.text
    token = signed_in.json()["access_token"]
    clients = [KeepAliveClient(server.base_url, token) for _ in range(3)]
    for client in clients:
        assert client.get_me().status_code == 200

    private_postgres.stop("fast")
    unavailable = 0
    for _ in range(REQUESTS_WHILE_DOWN):
        for client in clients:
            response = client.get_me()
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert int(response.headers["retry-after"]) > 0
            body = response.json()
            assert body["type"] == problem_type_uri("service-unavailable")
            assert body["request_id"] == response.headers["x-request-id"]
            assert "127.0.0.1" not in response.text
            unavailable += 1

    private_postgres.start()
    recovered = set()
    for _ in range(RECOVERY_ATTEMPTS):
        for index, client in enumerate(clients):
            if index in recovered:
                continue
            status = client.get_me().status_code
            assert status in (200, 503)
            unavailable += status == 503
            if status == 200:
                recovered.add(index)
        if len(recovered) == len(clients):
            break
    assert len(recovered) == len(clients), "the server did not recover by itself"
    for client in clients:
        assert client.get_me().status_code == 200
        assert len(client.connections) == 1, "a keep-alive connection was dropped"
        client.http.close()

    assert server.stopped_cleanly()
    logged = [json.loads(line) for line in server.stderr().splitlines() if line.startswith("{")]
    outage_lines = [entry for entry in logged if entry["msg"] == "database unavailable"]
    # Logged once per failed request, with the request's id and no traceback.
    assert len(outage_lines) == unavailable
    assert all(entry["request_id"] and "exc" not in entry for entry in outage_lines)
    assert "Traceback" not in server.stderr()
