"""Settings: production refuses the conveniences; development generates its signing key
once, privately, and keeps using it."""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.core.config import Settings, get_settings
from app.core.security import create_access_token, decode_access_token
from app.main import create_app

PG_URL = "postgresql+asyncpg://billing:secret@db.internal:5432/billing"
GOOD_SECRET = "k" * 32


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what a test sets counts: not the suite's DATABASE_URL, nor a developer's env."""
    for name in list(os.environ):
        if name.startswith("BILLING_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def production(**values: Any) -> Settings:
    return Settings.model_validate({"env": "production", **values})


def test_production_needs_a_signing_key() -> None:
    with pytest.raises(ValidationError, match="BILLING_JWT_SECRET"):
        production(database_url=PG_URL)


@pytest.mark.parametrize("secret", ["", "short", "k" * 31, "é" * 15])
def test_production_needs_a_long_enough_signing_key(secret: str) -> None:
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        production(database_url=PG_URL, jwt_secret=secret)


def test_the_key_length_is_counted_in_bytes() -> None:
    # 16 characters, 32 bytes in UTF-8.
    settings = production(database_url=PG_URL, jwt_secret="é" * 16)
    assert settings.signing_key == "é" * 16


def test_production_refuses_sqlite() -> None:
    with pytest.raises(ValidationError, match="PostgreSQL"):
        production(jwt_secret=GOOD_SECRET)
    with pytest.raises(ValidationError, match="PostgreSQL"):
        production(jwt_secret=GOOD_SECRET, database_url="sqlite+aiosqlite:///prod.db")


def test_production_with_both_starts() -> None:
    settings = production(database_url=PG_URL, jwt_secret=GOOD_SECRET)
    assert settings.signing_key == GOOD_SECRET
    assert not settings.is_sqlite


def test_production_from_the_environment_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BILLING_ENV", "production")
    with pytest.raises(ValidationError):
        get_settings()
    with pytest.raises(ValidationError):
        create_app()
    monkeypatch.setenv("DATABASE_URL", PG_URL)
    with pytest.raises(ValidationError):
        create_app()  # still no key
    monkeypatch.setenv("BILLING_JWT_SECRET", GOOD_SECRET)
    app = create_app()
    assert app.state.settings.env == "production"


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@h:5432/d")
    monkeypatch.setenv("BILLING_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("BILLING_LOGIN_MAX_FAILURES", "7")
    settings = get_settings()
    assert settings.data_dir == tmp_path / "elsewhere"
    assert settings.login_max_failures == 7
    # Hosted providers' postgres:// URLs get the async driver.
    assert settings.resolved_database_url == "postgresql+asyncpg://u:p@h:5432/d"


def test_defaults_run_on_a_local_sqlite_file(tmp_path: Path) -> None:
    settings = Settings()
    assert settings.env == "development"
    assert settings.is_sqlite
    assert settings.resolved_database_url == "sqlite+aiosqlite:///data/billing-portal.db"
    moved = Settings(data_dir=tmp_path / "d")
    assert moved.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path / 'd'}/billing-portal.db"


def test_the_signing_key_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"
    first = Settings(data_dir=data_dir)
    key = first.signing_key
    path = data_dir / "jwt-signing.key"
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key.encode()) >= 32
    assert path.read_text().strip() == key
    modified = path.stat().st_mtime_ns

    # A restart reads the same key and writes nothing.
    second = Settings(data_dir=data_dir)
    assert second.signing_key == key
    assert path.stat().st_mtime_ns == modified
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    # So a token signed before the restart still verifies after it.
    token = create_access_token(
        first,
        user_id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        token_version=1,
        session_id=uuid.uuid4(),
    )
    assert decode_access_token(second, token).token_version == 1


def test_each_data_dir_gets_its_own_key(tmp_path: Path) -> None:
    a = Settings(data_dir=tmp_path / "a").signing_key
    b = Settings(data_dir=tmp_path / "b").signing_key
    assert a != b


def test_a_configured_secret_writes_no_key_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, jwt_secret=GOOD_SECRET)
    assert settings.signing_key == GOOD_SECRET
    assert not (tmp_path / "jwt-signing.key").exists()


def test_an_existing_key_file_is_used_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "jwt-signing.key"
    path.write_text("a-key-somebody-put-here-" + "z" * 20 + "\n")
    path.chmod(0o600)
    assert Settings(data_dir=tmp_path).signing_key == "a-key-somebody-put-here-" + "z" * 20


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_body_bytes", 10),
        ("access_token_ttl_seconds", 0),
        ("login_max_failures", 0),
        ("env", "staging"),
    ],
)
def test_nonsense_settings_are_refused(name: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({name: value})
