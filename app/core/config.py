"""Settings from the environment (`BILLING_` prefix; `DATABASE_URL` read as is).

With nothing set the service runs on a SQLite file under `./data`, with a signing key
generated once and kept beside it, so a newcomer's first command works and restarts keep
sessions. Production refuses both conveniences.
"""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.proxies import Network, parse_networks

MIN_PRODUCTION_KEY_BYTES = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BILLING_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("data")
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "BILLING_DATABASE_URL")
    )
    database_echo: bool = False
    # Unset: a default for the kind of process (app.core.db.pool_limits); see the README's
    # "Sizing the connection pools" for the arithmetic against max_connections.
    database_pool_size: int | None = Field(default=None, ge=1)
    database_max_overflow: int | None = Field(default=None, ge=0)
    database_pool_timeout_seconds: float = Field(default=10.0, gt=0)
    database_pool_recycle_seconds: int = Field(default=1800, ge=0)

    jwt_secret: str | None = None
    jwt_issuer: str = "billing-portal"
    jwt_audience: str = "billing-portal-api"
    access_token_ttl_seconds: int = Field(default=15 * 60, ge=30)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)

    # Guesses allowed per window (app/auth/throttle): one account from one address, one
    # account from anywhere, one address at any accounts (accounts known there exempt).
    login_max_failures: int = Field(default=5, ge=1)
    login_account_max_failures: int = Field(default=20, ge=1)
    login_address_max_failures: int = Field(default=100, ge=1)
    login_known_address_days: int = Field(default=30, ge=1)
    login_window_seconds: int = Field(default=15 * 60, ge=1)
    # Proxies whose X-Forwarded-For is believed (CIDRs, comma-separated); none by default,
    # so the client address is the connection's peer.
    trusted_proxies: str = ""
    redis_url: str | None = None

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=3600)
    log_level: str = "INFO"
    log_json: bool = True
    # Prometheus /metrics on a port of its own, never the API's (app/core/metrics.py).
    metrics_enabled: bool = False
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9100, ge=1, le=65535)

    payment_gateway: str = "fake"
    stripe_api_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str = "https://api.stripe.com"
    gateway_timeout_seconds: float = Field(default=10.0, gt=0)
    # One limit for every replica (a token bucket in Redis when redis_url is set); None: no limit.
    gateway_rate_limit_per_second: float | None = Field(default=None, gt=0)
    gateway_rate_limit_burst: int | None = Field(default=None, ge=1)
    fake_gateway_latency_seconds: float = Field(default=0.0, ge=0)
    fake_gateway_ledger: str | None = None

    scheduler_interval_seconds: float = Field(default=30.0, gt=0)
    scheduler_batch_size: int = Field(default=50, ge=1, le=1000)
    scheduler_concurrency: int = Field(default=8, ge=1, le=100)
    # Renewed every third of itself while work goes on: a dead runner's rows come back within
    # a minute, a live one keeps them however long its gateway calls take.
    scheduler_lease_seconds: int = Field(default=60, ge=10)
    scheduler_retry_days: list[int] = Field(default_factory=lambda: [1, 3, 5])
    pending_reconcile_after_seconds: int = Field(default=60, ge=0)
    # Pending payments asked about at once: each waits on the gateway, and they are read and
    # recorded in groups, so many in flight cost few connections (the rate limit still holds).
    reconcile_concurrency: int = Field(default=32, ge=1, le=200)

    # Webhooks (app/webhooks): the key that encrypts endpoint secrets at rest (unset: derived
    # from the JWT signing key), private and plain-http targets (development and tests only),
    # and the deliverers' pace.
    secret_key: str | None = None
    webhooks_allow_private_urls: bool = False
    webhooks_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhooks_concurrency: int = Field(default=8, ge=1, le=100)
    webhooks_lease_seconds: int = Field(default=60, ge=5)
    webhooks_interval_seconds: float = Field(default=2.0, gt=0)

    # Email (app/notifications): `smtp://[user:pass@]host:port` (STARTTLS when offered) or
    # `smtps://` (implicit TLS); unset: each message is written to the log instead. The
    # address mail comes from (the tenant's name is its display name), and the senders' pace.
    smtp_url: str | None = None
    smtp_from: str = "billing@localhost"
    smtp_timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    email_concurrency: int = Field(default=4, ge=1, le=50)
    email_lease_seconds: int = Field(default=120, ge=5)
    email_interval_seconds: float = Field(default=10.0, gt=0)
    # `autopay_upcoming` goes this many days before a scheduled charge.
    autopay_notice_days: int = Field(default=3, ge=1, le=30)

    # Invoice PDFs: where clients open an invoice to pay it (`{public_url}/invoices/{id}`),
    # and a font for the scripts the bundled one lacks (CJK), as a .ttf, .otf or .ttc file.
    public_url: str | None = None
    pdf_fallback_font: Path | None = None

    # Origins whose pages may call the API from a browser (CORS), comma-separated, e.g.
    # `https://portal.example.com,http://localhost:5173`; none by default.
    cors_origins: str = ""
    # Behind TLS (directly or at a proxy): responses then carry Strict-Transport-Security.
    served_over_https: bool = False

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL, e.g. https://billing.example.com")
        return value.rstrip("/")

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: str) -> str:
        try:
            networks = parse_networks(value)
        except ValueError as exc:
            raise ValueError(f"not a list of CIDRs such as 10.0.0.0/8,192.0.2.1: {exc}") from exc
        return ",".join(str(network) for network in networks)

    @property
    def trusted_proxy_networks(self) -> list[Network]:
        return parse_networks(self.trusted_proxies)

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("must be smtp://[user:pass@]host[:port] or smtps://...")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _cors_origins(cls, value: str) -> str:
        return ",".join(_origin(part.strip()) for part in value.split(",") if part.strip())

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin for origin in self.cors_origins.split(",") if origin]

    @field_validator("pdf_fallback_font")
    @classmethod
    def _pdf_fallback_font(cls, value: Path | None) -> Path | None:
        if value is not None:
            if value.suffix.lower() not in (".ttf", ".otf", ".ttc"):
                raise ValueError("must be a .ttf, .otf or .ttc font file")
            if not value.is_file():
                raise ValueError(f"no font file at {value}")
        return value

    @model_validator(mode="after")
    def _production_guards(self) -> Settings:
        if self.env != "production":
            return self
        if not self.jwt_secret or len(self.jwt_secret.encode()) < MIN_PRODUCTION_KEY_BYTES:
            raise ValueError(
                "BILLING_ENV=production needs BILLING_JWT_SECRET of at least "
                f"{MIN_PRODUCTION_KEY_BYTES} bytes"
            )
        if self.resolved_database_url.startswith("sqlite"):
            raise ValueError("BILLING_ENV=production needs a PostgreSQL DATABASE_URL, not SQLite")
        return self

    @cached_property
    def resolved_database_url(self) -> str:
        url = self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'billing-portal.db'}"
        # Hosted PostgreSQL providers hand out postgres:// URLs; the async driver needs its name.
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url[len(prefix) :]
        return url

    @property
    def fake_gateway_ledger_path(self) -> str | None:
        """Where the fake gateway keeps its charges. In development a file beside the
        database, so the demo's charges survive restarts and the CLI and the server agree
        on them; in tests, memory, unless a test names a file."""
        if self.fake_gateway_ledger:
            return self.fake_gateway_ledger
        if self.env == "development":
            return str(self.data_dir / "fake-gateway.db")
        return None

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @cached_property
    def signing_key(self) -> str:
        """The JWT key: the configured one, else one generated once and kept on disk."""
        if self.jwt_secret:
            return self.jwt_secret
        path = self.data_dir / "jwt-signing.key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        # O_EXCL: two processes starting together agree on whichever key landed first.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key


def _origin(text: str) -> str:
    """An origin as browsers send it (`https://app.example.com`, `http://localhost:5173`):
    lower-case, no default port, no path."""
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{text!r} is not an origin such as https://app.example.com")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{text!r} is not an origin: leave out the path, query and user")
    default_port = {"https": 443, "http": 80}[parts.scheme]
    port = "" if parts.port in (None, default_port) else f":{parts.port}"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}{port}"


def get_settings() -> Settings:
    return Settings()
