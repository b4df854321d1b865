"""The application factory: settings, database, middleware, error handlers, routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.auth.preferences.router import router as notifications_router
from app.auth.router import router as auth_router
from app.auth.throttle import create_login_throttle
from app.auth.totp.router import router as totp_router
from app.autopay.router import router as autopay_router
from app.consents.router import router as consents_router
from app.core.audit import AuditContextMiddleware, audit_reason
from app.core.config import Settings, get_settings
from app.core.cors import install_cors
from app.core.db import create_engine, create_sessionmaker, database_answers
from app.core.docs import install_docs
from app.core.errors import install_error_handlers, problem_response
from app.core.idempotency import IdempotencyStore
from app.core.logging import configure_logging
from app.core.metrics import HttpMetricsMiddleware
from app.core.middleware import RequestContextMiddleware
from app.core.openapi import install_openapi
from app.core.proxies import TrustedProxyMiddleware
from app.core.security_headers import SecurityHeadersMiddleware
from app.events.router import router as events_router
from app.invoices.router import router as invoices_router
from app.payment_methods.router import router as payment_methods_router
from app.payments.router import router as payments_router
from app.scheduled_payments.router import router as scheduled_payments_router
from app.tenancy.router import router as tenancy_router
from app.tickets.router import router as tickets_router
from app.webhooks.router import router as webhooks_router
from app.wiring import build_gateway, build_hooks

API_PREFIX = "/api/v1"
OPENAPI_URL = "/openapi.json"
API_ROUTERS: list[APIRouter] = [
    auth_router,
    totp_router,
    tenancy_router,
    payment_methods_router,
    invoices_router,
    payments_router,
    autopay_router,
    scheduled_payments_router,
    tickets_router,
    consents_router,
    events_router,
    webhooks_router,
    notifications_router,
]


class Health(BaseModel):
    status: str = Field(description="`ok` (the process is up) or `ready` (the database answers).")


def _unique_operation_id(route: Any) -> str:
    # Every route names its operation_id explicitly; this only guards against forgetting.
    raise RuntimeError(f"route {route.path} has no operation_id")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.login_throttle.aclose()
        await app.state.gateway.aclose()
        for hook in app.state.shutdown_hooks:
            await hook()
        await app.state.engine.dispose()

    app = FastAPI(
        title="Billing portal API",
        version="1.0.0",
        summary="Invoices, payments, AutoPay and service tickets for an MSP's clients.",
        lifespan=lifespan,
        generate_unique_id_function=_unique_operation_id,
        openapi_url=OPENAPI_URL,
        docs_url=None,  # served by install_docs, without a CDN
        redoc_url=None,
    )
    engine = create_engine(settings, kind="api")
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.login_throttle = create_login_throttle(settings, app.state.sessionmaker)
    app.state.shutdown_hooks = []
    app.state.idempotency = IdempotencyStore(app.state.sessionmaker, settings)
    app.state.gateway = build_gateway(settings)
    app.state.hooks = build_hooks()

    install_error_handlers(app)
    app.add_middleware(AuditContextMiddleware)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    # Outside the request context, so its logs and every reader see the client's address.
    app.add_middleware(TrustedProxyMiddleware, networks=settings.trusted_proxy_networks)
    install_cors(app, settings.cors_origin_list)  # outside the request context: every answer
    # Outside CORS: its preflight answers carry the headers too.
    app.add_middleware(SecurityHeadersMiddleware, served_over_https=settings.served_over_https)
    if settings.metrics_enabled:
        app.add_middleware(HttpMetricsMiddleware)  # outermost: it sees every answer

    for router in API_ROUTERS:
        # Any call may say why (X-Audit-Reason); the events it records keep it.
        app.include_router(router, prefix=API_PREFIX, dependencies=[Depends(audit_reason)])
    app.include_router(_operations_router())
    install_docs(app, openapi_url=OPENAPI_URL)
    install_openapi(app)
    return app


def _operations_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", operation_id="healthz", summary="Liveness")
    async def healthz() -> Health:
        """The process is up."""
        return Health(status="ok")

    @router.get(
        "/readyz",
        operation_id="readyz",
        summary="Readiness",
        response_model=Health,
        responses={503: {"description": "The database does not answer."}},
    )
    async def readyz(request: Request) -> JSONResponse:
        """The database answers."""
        if not await database_answers(request.app.state.engine):
            return problem_response(
                503,
                detail="The database is not reachable.",
                request=request,
                type_slug="not-ready",
                headers={"Retry-After": "5"},
            )
        return JSONResponse({"status": "ready"})

    return router
