"""Prometheus metrics, scraped from real processes and parsed: requests by route template
(never the raw path) and status, with latency histograms; served on the metrics port only
when enabled, never on the API's; added up across `serve --workers 2`; and the runner's
own server, with the money path's metrics."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from app.core.config import Settings
from app.core.errors import problem_type_uri
from app.core.metrics import (
    OUTBOX_DEPTH,
    PAYMENTS,
    RUNNER_QUEUE_DEPTH,
    RUNNER_QUEUE_LAG,
    RouteTemplates,
    start_metrics_server,
    time_gateway_call,
)
from tests.core.conftest import BuildApp
from tests.ops.conftest import StartServer
from tests.ops.private_postgres import free_port
from tests.ops.serve_process import Server, process_env

INVOICE_ROUTE = "/api/v1/invoices/{invoice_id}"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def sqlite_env(tmp_path: Path, **env: str) -> dict[str, str]:
    return process_env(f"sqlite+aiosqlite:///{tmp_path / 'metrics.db'}", tmp_path, **env)


@pytest.fixture
def serving(tmp_path: Path, serve: StartServer) -> tuple[Server, int]:
    port = free_port()
    env = sqlite_env(tmp_path, BILLING_METRICS_ENABLED="true", BILLING_METRICS_PORT=str(port))
    server = serve(env, tmp_path)
    server.wait_healthy()
    return server, port


def test_requests_are_counted_by_route_template_and_status(serving: tuple[Server, int]) -> None:
    server, port = serving
    ids = [str(uuid.uuid4()) for _ in range(3)]
    with httpx.Client(base_url=server.base_url) as http:
        for invoice_id in ids:
            assert http.get(f"/api/v1/invoices/{invoice_id}").status_code == 401
        assert http.get("/healthz").status_code == 200  # the one from wait_healthy, and this
        assert http.get("/no/such/path").status_code == 404
        assert http.get("/metrics").status_code == 404  # never on the API's own port
    samples = scrape(port)

    count = "billing_http_requests_total"
    assert value(samples, count, method="GET", route=INVOICE_ROUTE, status="401") == 3
    assert value(samples, count, method="GET", route="/healthz", status="200") >= 2
    assert value(samples, count, method="GET", route="unmatched", status="404") == 2
    histogram = "billing_http_request_duration_seconds"
    assert value(samples, f"{histogram}_count", method="GET", route=INVOICE_ROUTE) == 3
    assert value(samples, f"{histogram}_bucket", method="GET", route=INVOICE_ROUTE, le="+Inf") == 3
    assert value(samples, f"{histogram}_sum", method="GET", route=INVOICE_ROUTE) > 0
    every_label = {v for (_name, labels) in samples for (_k, v) in labels}
    assert not any(invoice_id in label for invoice_id in ids for label in every_label)
    assert server.stopped_cleanly()


def test_metrics_are_off_unless_enabled(tmp_path: Path, serve: StartServer) -> None:
    port = free_port()
    server = serve(sqlite_env(tmp_path, BILLING_METRICS_PORT=str(port)), tmp_path)
    server.wait_healthy()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics")
    assert httpx.get(f"{server.base_url}/metrics").status_code == 404


def test_several_workers_are_added_up(tmp_path: Path, serve: StartServer) -> None:
    port = free_port()
    env = sqlite_env(tmp_path, BILLING_METRICS_ENABLED="true", BILLING_METRICS_PORT=str(port))
    server = serve(env, tmp_path, "--workers", "2")
    requests = 40
    server.wait_healthy()
    before = scrape(port)
    for _ in range(requests):  # a new connection each time, so both workers answer
        assert httpx.get(f"{server.base_url}/api/v1/invoices/{uuid.uuid4()}").status_code == 401
    after = scrape(port)
    assert server.stopped_cleanly()
    labels = {"method": "GET", "route": INVOICE_ROUTE, "status": "401"}
    counted = value(after, "billing_http_requests_total", **labels) - value(
        before, "billing_http_requests_total", **labels
    )
    assert counted == requests


def test_the_runner_serves_its_own_metrics() -> None:
    settings = Settings(metrics_enabled=True, metrics_port=free_port())
    server = start_metrics_server(settings)
    assert server is not None
    try:
        before = scrape(server.port)
        RUNNER_QUEUE_DEPTH.labels("scheduled_payments").set(1234)
        RUNNER_QUEUE_LAG.labels("scheduled_payments").set(42.5)
        OUTBOX_DEPTH.labels("webhook").set(7)
        PAYMENTS.labels("succeeded", "autopay").inc(3)
        with time_gateway_call("fake", "charge"):
            pass
        with pytest.raises(TimeoutError), time_gateway_call("fake", "charge"):
            raise TimeoutError
        after = scrape(server.port)
    finally:
        server.close()

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert value(after, "billing_runner_queue_depth", queue="scheduled_payments") == 1234
    assert value(after, "billing_runner_queue_lag_seconds", queue="scheduled_payments") == 42.5
    assert value(after, "billing_outbox_depth", kind="webhook") == 7
    assert grew("billing_payments_total", outcome="succeeded", origin="autopay") == 3
    call = {"gateway": "fake", "operation": "charge"}
    assert grew("billing_gateway_call_duration_seconds_count", **call) == 2
    assert grew("billing_gateway_errors_total", error="TimeoutError", **call) == 1
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{server.port}/metrics")


def test_a_disabled_process_serves_no_metrics() -> None:
    assert start_metrics_server(Settings(metrics_port=free_port())) is None


async def test_requests_refused_before_routing_keep_their_route(build_app: BuildApp) -> None:
    labels = {"method": "POST", "route": "/api/v1/clients", "status": "422"}

    def counted() -> float:
        return REGISTRY.get_sample_value("billing_http_requests_total", labels) or 0.0

    before = counted()
    async with build_app(metrics_enabled=True) as (_app, http):
        refused = await http.post("/api/v1/clients", json={"name": "4242 4242 4242 4242"})
        assert refused.json()["type"] == problem_type_uri("card-number-refused")
    assert counted() - before == 1


def test_literal_paths_win_over_templates() -> None:
    application = FastAPI()

    @application.get("/things/{thing_id}")
    async def one_thing(thing_id: str) -> None: ...

    @application.get("/things/summary")
    async def summary() -> None: ...

    templates = RouteTemplates(application)
    assert templates.template_of("/things/summary") == "/things/summary"
    assert templates.template_of("/things/42") == "/things/{thing_id}"
    assert templates.template_of("/things/42/more") == "unmatched"
    assert templates.template_of("/docs") == "/docs"
