"""The `billing-portal` command."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from pydantic import ValidationError

from app.core.config import Settings, get_settings
from app.core.logging import configure_logging, uvicorn_log_config

if TYPE_CHECKING:
    from app.payments.reconcile import ReconcileReport

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def alembic_config(settings: Settings) -> Config:
    ini = PROJECT_ROOT / "alembic.ini"
    config = Config(str(ini)) if ini.exists() else Config()
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["settings"] = settings
    config.attributes["configure_logger"] = False
    return config


def migrate(settings: Settings) -> None:
    command.upgrade(alembic_config(settings), "head")


def _cmd_migrate(args: argparse.Namespace) -> int:
    migrate(get_settings())
    print("database migrated to head")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.core.metrics import serve_metrics

    settings = get_settings()
    if args.migrate:
        migrate(settings)
    print(f"billing-portal listening on http://{args.host}:{args.port}", flush=True)
    with serve_metrics(settings, workers=args.workers):
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            # Off: uvicorn would take X-Forwarded-For from any local peer; the app reads it
            # only from BILLING_TRUSTED_PROXIES (app/core/proxies.py).
            proxy_headers=False,
            # uvicorn's own lines as JSON; its access log is off: billing_portal.access
            # writes one line per request, with the request id and duration.
            log_config=uvicorn_log_config(settings.log_level, json_lines=settings.log_json),
            log_level=settings.log_level.lower(),
            access_log=False,
        )
    return 0


def _cmd_create_staff(args: argparse.Namespace) -> int:
    from app.bootstrap import create_staff

    password = args.password or getpass.getpass("Password for the staff user: ")
    settings = get_settings()
    migrate(settings)
    try:
        user_id = asyncio.run(
            create_staff(
                settings,
                email=args.email,
                password=password,
                tenant_name=args.tenant,
                full_name=args.full_name,
            )
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"staff user {args.email} created ({user_id})")
    return 0


def _cmd_seed_demo(args: argparse.Namespace) -> int:
    from app.demo.seed import seed_demo

    settings = get_settings()
    migrate(settings)
    logins = asyncio.run(seed_demo(settings, only_if_empty=args.if_empty))
    if logins is None:
        print("the database already has data; demo data not added (drop --if-empty to force)")
        return 0
    print("demo data ready; sign in with:")
    for role, email, password in logins:
        print(f"  {role:<7} {email:<32} {password}")
    return 0


def _cmd_run_scheduler(args: argparse.Namespace) -> int:
    settings = get_settings()
    return asyncio.run(_run_scheduler(settings, once=args.once, interval=args.interval))


async def _run_scheduler(settings: Settings, *, once: bool, interval: float | None) -> int:
    import signal

    from app.core.db import create_engine, create_sessionmaker
    from app.core.logging import configure_logging
    from app.core.metrics import start_metrics_server
    from app.scheduler.runner import PaymentRunner, run_forever
    from app.wiring import build_gateway

    configure_logging(settings.log_level, json_lines=settings.log_json)
    engine = create_engine(settings, kind="runner")
    gateway = build_gateway(settings)
    stop = asyncio.Event()
    runner = PaymentRunner(create_sessionmaker(engine), gateway, settings, stop=stop)
    # The runner's own /metrics (payments, gateway calls, queue depth and lag) when enabled.
    metrics = start_metrics_server(settings) if not once else None
    loop = asyncio.get_running_loop()
    # SIGTERM or Ctrl-C: claim nothing more, finish the payments in flight, hand back the rest.
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        if once:
            report = await runner.run_once()
            print(
                f"claimed {report.claimed}: {report.succeeded} succeeded, "
                f"{report.failed} failed, {report.retrying} to retry, {report.canceled} canceled, "
                f"{report.pending} pending, {report.deferred} deferred, {report.errored} errored; "
                f"{report.reconciled} reconciled; {report.webhooks_sent} webhooks attempted; "
                f"{report.emails_sent} emails sent"
            )
            return 0
        print("scheduler running; SIGTERM or Ctrl-C stops it", flush=True)
        await run_forever(runner, interval or settings.scheduler_interval_seconds)
        print("scheduler stopped", flush=True)
        return 0
    finally:
        if metrics is not None:
            metrics.close()
        await gateway.aclose()
        await engine.dispose()


def _cmd_deliver_webhooks(args: argparse.Namespace) -> int:
    settings = get_settings()
    return asyncio.run(_deliver_webhooks(settings, once=args.once, interval=args.interval))


async def _deliver_webhooks(settings: Settings, *, once: bool, interval: float | None) -> int:
    import signal

    from app.core.db import create_engine, create_sessionmaker
    from app.core.logging import configure_logging
    from app.webhooks.delivery import WebhookDeliverer, run_forever

    configure_logging(settings.log_level, json_lines=settings.log_json)
    engine = create_engine(settings)
    stop = asyncio.Event()
    deliverer = WebhookDeliverer(create_sessionmaker(engine), settings, stop=stop)
    loop = asyncio.get_running_loop()
    # SIGTERM or Ctrl-C: claim nothing more, finish the attempts in flight, hand back the rest.
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        if once:
            report = await deliverer.run_once()
            outcomes = ", ".join(f"{n} {name}" for name, n in sorted(report.outcomes.items()))
            print(f"webhooks: {report.claimed} attempted" + (f": {outcomes}" if outcomes else ""))
            return 0
        print("delivering webhooks; SIGTERM or Ctrl-C stops it", flush=True)
        await run_forever(deliverer, interval or settings.webhooks_interval_seconds)
        print("webhook deliverer stopped", flush=True)
        return 0
    finally:
        await engine.dispose()


def _cmd_send_notifications(args: argparse.Namespace) -> int:
    settings = get_settings()
    return asyncio.run(_send_notifications(settings, once=args.once, interval=args.interval))


async def _send_notifications(settings: Settings, *, once: bool, interval: float | None) -> int:
    import signal

    from app.core.db import create_engine, create_sessionmaker
    from app.core.logging import configure_logging
    from app.notifications.outbox import EmailSender, run_forever

    configure_logging(settings.log_level, json_lines=settings.log_json)
    engine = create_engine(settings)
    stop = asyncio.Event()
    sender = EmailSender(create_sessionmaker(engine), settings, stop=stop)
    loop = asyncio.get_running_loop()
    # SIGTERM or Ctrl-C: claim nothing more, finish the messages in flight, hand back the rest.
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        if once:
            report = await sender.run_once()
            outcomes = ", ".join(f"{n} {name}" for name, n in sorted(report.outcomes.items()))
            print(f"emails: {report.claimed} attempted" + (f": {outcomes}" if outcomes else ""))
            return 0
        print("sending notifications; SIGTERM or Ctrl-C stops it", flush=True)
        await run_forever(sender, interval or settings.email_interval_seconds)
        print("notification sender stopped", flush=True)
        return 0
    finally:
        await engine.dispose()


def _cmd_reconcile(args: argparse.Namespace) -> int:
    report = asyncio.run(_reconcile(get_settings(), older_than=args.older_than, limit=args.limit))
    print(
        f"payments: {report.payments_settled} settled of {report.payments_checked} pending; "
        f"refunds: {report.refunds_settled} settled of {report.refunds_checked} pending"
    )
    return 0


async def _reconcile(
    settings: Settings, *, older_than: float, limit: int | None
) -> ReconcileReport:
    from app.core.db import create_engine, create_sessionmaker
    from app.payments.reconcile import reconcile
    from app.wiring import build_gateway

    engine = create_engine(settings)
    gateway = build_gateway(settings)
    try:
        return await reconcile(
            create_sessionmaker(engine),
            gateway,
            older_than=timedelta(seconds=older_than),
            limit=limit,
            concurrency=settings.reconcile_concurrency,
        )
    finally:
        await gateway.aclose()
        await engine.dispose()


def _cmd_export_openapi(args: argparse.Namespace) -> int:
    from app.main import create_app

    document = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:")).openapi()
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    print(f"wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="billing-portal", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate the database to head, then serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--no-migrate",
        dest="migrate",
        action="store_false",
        help="serve without migrating (deploys that run `billing-portal migrate` once first)",
    )
    serve.set_defaults(func=_cmd_serve)

    sub.add_parser("migrate", help="alembic upgrade head").set_defaults(func=_cmd_migrate)

    staff = sub.add_parser("create-staff", help="bootstrap a staff user (and the tenant)")
    staff.add_argument("--email", required=True)
    staff.add_argument("--password", help="prompted for when left out")
    staff.add_argument("--tenant", help="the tenant's name, when there is none yet")
    staff.add_argument("--full-name", default=None)
    staff.set_defaults(func=_cmd_create_staff)

    seed = sub.add_parser("seed-demo", help="a demo tenant with clients, users, invoices, tickets")
    seed.add_argument(
        "--if-empty", action="store_true", help="do nothing when a tenant exists already"
    )
    seed.set_defaults(func=_cmd_seed_demo)

    scheduler = sub.add_parser(
        "run-scheduler", help="process due scheduled payments (safe to run several at once)"
    )
    scheduler.add_argument("--once", action="store_true", help="one run, then exit")
    scheduler.add_argument(
        "--interval", type=float, default=None, help="seconds between runs (default: setting)"
    )
    scheduler.set_defaults(func=_cmd_run_scheduler)

    webhooks = sub.add_parser(
        "deliver-webhooks", help="send webhook deliveries (safe to run several at once)"
    )
    webhooks.add_argument("--once", action="store_true", help="send what is due, then exit")
    webhooks.add_argument(
        "--interval", type=float, default=None, help="seconds between runs (default: setting)"
    )
    webhooks.set_defaults(func=_cmd_deliver_webhooks)

    emails = sub.add_parser(
        "send-notifications", help="send notification emails (safe to run several at once)"
    )
    emails.add_argument("--once", action="store_true", help="send what is due, then exit")
    emails.add_argument(
        "--interval", type=float, default=None, help="seconds between runs (default: setting)"
    )
    emails.set_defaults(func=_cmd_send_notifications)

    reconcile = sub.add_parser(
        "reconcile", help="settle payments and refunds the gateway left pending"
    )
    reconcile.add_argument(
        "--older-than",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="only those pending at least this long (default 60)",
    )
    reconcile.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="settle at most N payments and N refunds, fewest tries first (default: all)",
    )
    reconcile.set_defaults(func=_cmd_reconcile)

    export = sub.add_parser("export-openapi", help="write openapi/openapi.json")
    export.add_argument("--output", default=str(PROJECT_ROOT / "openapi" / "openapi.json"))
    export.set_defaults(func=_cmd_export_openapi)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Every command logs JSON lines on stderr (as configured); one that fails unexpectedly
    logs its traceback inside one record and exits 1."""
    args = build_parser().parse_args(argv)
    configure_logging()
    log = logging.getLogger("billing_portal.cli")
    try:
        settings = get_settings()
    except ValidationError as exc:
        log.error(
            "invalid settings", extra={"errors": exc.errors(include_url=False, include_input=False)}
        )
        return 2
    configure_logging(settings.log_level, json_lines=settings.log_json)
    try:
        result: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception:
        log.exception("command failed", extra={"command": args.command})
        return 1
    return result


if __name__ == "__main__":
    raise SystemExit(main())
