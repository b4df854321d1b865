"""Prometheus metrics: what every process records, and how a process shows them.

Off unless `BILLING_METRICS_ENABLED=true`, and never on the API's own port: a process that
has them enabled serves `/metrics` on `BILLING_METRICS_HOST:BILLING_METRICS_PORT`
(127.0.0.1:9100 by default), a port the load balancer does not route to, so scrapers reach
it and clients do not.

`serve --workers N` is N processes: each writes its values to files in
`PROMETHEUS_MULTIPROC_DIR` (prometheus-client's multiprocess mode; `serve` makes that
directory when none is given, and empties it at start) and the serving parent adds them up.

The money path records through the objects below; label values are few and fixed (never
an id), so every series stays bounded.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from threading import Thread
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import start_http_server as _start_http_server
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from app.core.config import Settings

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED_ROUTE = "unmatched"

HTTP_REQUESTS = Counter(
    "billing_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "billing_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

# The money path (pay-now, the runner, reconcile) records these.
PAYMENTS = Counter(
    "billing_payments",
    "Payments recorded, by outcome (succeeded, failed, pending) and origin (pay_now: a client's "
    "or staff's payment now; scheduled: the runner's and manual retries).",
    ["outcome", "origin"],
)
GATEWAY_CALL_DURATION = Histogram(
    "billing_gateway_call_duration_seconds",
    "Time a payment gateway call took, by gateway and operation (charge, refund, ...).",
    ["gateway", "operation"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
)
GATEWAY_ERRORS = Counter(
    "billing_gateway_errors",
    "Payment gateway calls that raised, by gateway, operation and error class.",
    ["gateway", "operation", "error"],
)
# Gauges are facts read from the database, the same whichever process reads them: in
# multiprocess mode the most recent reading of a live process is the value.
RUNNER_QUEUE_DEPTH = Gauge(
    "billing_runner_queue_depth",
    "Rows due and not yet done, by queue (scheduled_payments, pending_payments, ...).",
    ["queue"],
    multiprocess_mode="livemostrecent",
)
RUNNER_QUEUE_LAG = Gauge(
    "billing_runner_queue_lag_seconds",
    "How long the oldest due row of a queue has been due.",
    ["queue"],
    multiprocess_mode="livemostrecent",
)
OUTBOX_DEPTH = Gauge(
    "billing_outbox_depth",
    "Outbox rows not yet delivered, by kind (webhook, email).",
    ["kind"],
    multiprocess_mode="livemostrecent",
)


@contextmanager
def time_gateway_call(gateway: str, operation: str) -> Iterator[None]:
    """`with time_gateway_call("stripe", "charge"): await ...`: records the call's duration
    and, when it raises, its error class."""
    started = time.perf_counter()
    try:
        yield
    except Exception as exc:
        GATEWAY_ERRORS.labels(gateway, operation, type(exc).__name__).inc()
        raise
    finally:
        GATEWAY_CALL_DURATION.labels(gateway, operation).observe(time.perf_counter() - started)


def metrics_registry() -> CollectorRegistry:
    """This process's metrics, or in multiprocess mode every process's, added up."""
    directory = os.environ.get(MULTIPROC_DIR_ENV)
    if not directory:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


def prepare_multiprocess_dir(directory: Path) -> None:
    """Create the directory, or empty it of a previous run's values (which would otherwise
    be added to this run's), and point prometheus-client at it; before any worker starts."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_DIR_ENV] = str(directory)


@dataclass
class MetricsServer:
    server: WSGIServer
    thread: Thread

    @property
    def port(self) -> int:
        port: int = self.server.server_port
        return port

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def start_metrics_server(settings: Settings) -> MetricsServer | None:
    """Serve this process's `/metrics` on the metrics port when metrics are enabled (a
    daemon thread; `close()` stops it). `serve` calls it, and so does the runner."""
    if not settings.metrics_enabled:
        return None
    server, thread = _start_http_server(
        settings.metrics_port, addr=settings.metrics_host, registry=metrics_registry()
    )
    return MetricsServer(server, thread)


@contextmanager
def serve_metrics(settings: Settings, *, workers: int) -> Iterator[MetricsServer | None]:
    """Around `uvicorn.run`: with metrics enabled and several workers, multiprocess mode (a
    directory made here unless PROMETHEUS_MULTIPROC_DIR names one), and the metrics port
    served from this, the parent, process."""
    made: Path | None = None
    if settings.metrics_enabled and (workers > 1 or os.environ.get(MULTIPROC_DIR_ENV)):
        given = os.environ.get(MULTIPROC_DIR_ENV)
        directory = Path(given) if given else Path(tempfile.mkdtemp(prefix="billing-metrics-"))
        made = None if given else directory
        prepare_multiprocess_dir(directory)
    server = start_metrics_server(settings)
    try:
        yield server
    finally:
        if server:
            server.close()
        if made:
            shutil.rmtree(made, ignore_errors=True)


class RouteTemplates:
    """Which route template a path belongs to, from the app's own list of paths (its OpenAPI
    document, plus the routes kept out of it such as /docs): the same answer whether the
    request was routed, refused before routing, or matched nothing. Literal paths win over
    templated ones (`/invoices/summary` before `/invoices/{invoice_id}`), as routing does."""

    def __init__(self, app: Any) -> None:
        paths: set[str] = set(app.openapi().get("paths", {}))
        paths.update(p for r in app.routes if isinstance(p := getattr(r, "path", None), str))
        ordered = sorted(paths, key=lambda p: (p.count("{"), -len(p)))
        self._patterns = [(re.compile(_path_regex(p)), p) for p in ordered]

    def template_of(self, path: str) -> str:
        for pattern, template in self._patterns:
            if pattern.fullmatch(path):
                return template
        return UNMATCHED_ROUTE


def _path_regex(template: str) -> str:
    parts = re.split(r"(\{[^}]+\})", template)
    return "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)


class HttpMetricsMiddleware:
    """Counts and times every HTTP request by its route template (`/api/v1/invoices/
    {invoice_id}`, never the raw path: one series per route, not per id)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates: RouteTemplates | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        if self._templates is None:  # on the first request: every route is added by then
            self._templates = RouteTemplates(scope["app"])
        route = self._templates.template_of(scope["path"])

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            method = scope.get("method", "")
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_REQUEST_DURATION.labels(method, route).observe(time.perf_counter() - started)
