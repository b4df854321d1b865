"""The `billing-portal` command, against a SQLite file of its own."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from app.demo.seed import DEMO_PASSWORD


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """DATABASE_URL and BILLING_DATA_DIR pointing into a temporary directory."""
    for name in list(os.environ):
        if name.startswith("BILLING_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    path = tmp_path / "cli.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    monkeypatch.setenv("BILLING_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("BILLING_LOG_LEVEL", "WARNING")
    return path


def query(path: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as connection:
        return list(connection.execute(sql, params))


def test_create_staff_on_a_fresh_database(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["create-staff", "--email", "Owner@MSP.example", "--password", "a long enough secret"]
    )
    assert code == 0
    assert "staff user" in capsys.readouterr().out
    [(name,)] = query(database, "SELECT name FROM tenants")
    assert name == "My MSP"
    [(email, role, client_id, password_hash, must_change)] = query(
        database,
        "SELECT email, role, client_id, password_hash, must_change_password FROM users",
    )
    assert email == "owner@msp.example"
    assert role == "staff"
    assert client_id is None
    assert str(password_hash).startswith("$argon2id$")
    assert "a long enough secret" not in str(password_hash)
    assert not must_change


def test_create_staff_names_the_tenant_and_joins_it_later(database: Path) -> None:
    args = ["create-staff", "--password", "a long enough secret", "--tenant", "Contoso IT"]
    assert main([*args[:1], "--email", "one@msp.example", *args[1:]]) == 0
    assert (
        main(["create-staff", "--email", "two@msp.example", "--password", "another secret!"]) == 0
    )
    assert query(database, "SELECT name FROM tenants") == [("Contoso IT",)]
    rows = query(database, "SELECT DISTINCT tenant_id FROM users")
    assert len(rows) == 1


@pytest.mark.parametrize(
    "password",
    ["short", "elevenchars", "x" * 129, "WEAK"],
)
def test_create_staff_refuses_a_weak_password(
    database: Path, capsys: pytest.CaptureFixture[str], password: str
) -> None:
    code = main(["create-staff", "--email", "weakweakweak@msp.example", "--password", password])
    assert code != 0
    assert "error" in capsys.readouterr().err
    if database.exists():
        assert query(database, "SELECT count(*) FROM users") == [(0,)]


def test_create_staff_refuses_the_email_as_password(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    email = "longlocalpart@msp.example"
    assert main(["create-staff", "--email", email, "--password", email.upper()]) != 0
    assert "email" in capsys.readouterr().err
    assert query(database, "SELECT count(*) FROM users") == [(0,)]


def test_create_staff_refuses_a_duplicate_email(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["create-staff", "--email", "dup@msp.example", "--password", "first password!"]) == 0
    )
    capsys.readouterr()
    code = main(["create-staff", "--email", "DUP@msp.example", "--password", "second password!"])
    assert code != 0
    assert "exists" in capsys.readouterr().err
    assert query(database, "SELECT count(*) FROM users") == [(1,)]


def test_seed_demo_and_if_empty(database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["seed-demo"]) == 0
    out = capsys.readouterr().out
    assert "admin@northwind-msp.example" in out
    assert DEMO_PASSWORD in out
    assert query(database, "SELECT count(*) FROM tenants") == [(1,)]
    [(staff,)] = query(database, "SELECT count(*) FROM users WHERE role = 'staff'")
    [(contacts,)] = query(database, "SELECT count(*) FROM users WHERE role = 'client'")
    assert staff == 1
    assert contacts >= 3
    assert query(database, "SELECT count(*) FROM clients")[0][0] >= 3
    assert query(database, "SELECT count(*) FROM service_categories")[0][0] >= 1
    users_before = query(database, "SELECT count(*) FROM users")

    assert main(["seed-demo", "--if-empty"]) == 0
    assert "already has data" in capsys.readouterr().out
    assert query(database, "SELECT count(*) FROM tenants") == [(1,)]
    assert query(database, "SELECT count(*) FROM users") == users_before

    # Without --if-empty a second demo tenant is added, with logins of its own.
    assert main(["seed-demo"]) == 0
    assert query(database, "SELECT count(*) FROM tenants") == [(2,)]
    emails = [e for (e,) in query(database, "SELECT email FROM users")]
    assert len(emails) == len(set(emails))


def test_seed_demo_on_a_data_dir_that_does_not_exist_yet(
    database: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A newcomer's first command: nothing exists yet, not even the data directory."""
    fresh = tmp_path / "fresh" / "data"
    monkeypatch.setenv("BILLING_DATA_DIR", str(fresh))
    assert main(["seed-demo"]) == 0
    assert query(database, "SELECT count(*) FROM tenants") == [(1,)]


def test_seed_demo_if_empty_on_an_empty_database(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["seed-demo", "--if-empty"]) == 0
    assert "demo data ready" in capsys.readouterr().out
    assert query(database, "SELECT count(*) FROM tenants") == [(1,)]


def test_seed_demo_after_create_staff_is_skipped_with_if_empty(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["create-staff", "--email", "me@msp.example", "--password", "a fine password"]) == 0
    assert main(["seed-demo", "--if-empty"]) == 0
    assert "already has data" in capsys.readouterr().out
    assert query(database, "SELECT count(*) FROM users") == [(1,)]


def test_export_openapi(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "nested" / "openapi.json"
    assert main(["export-openapi", "--output", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    document = json.loads(out.read_text())
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Billing portal API"
    assert "/api/v1/clients" in document["paths"]
    assert out.read_text().endswith("\n")


def test_an_unknown_command_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["frobnicate"])
    assert exited.value.code == 2
    with pytest.raises(SystemExit):
        main([])
