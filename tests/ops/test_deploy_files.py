"""The files a deployment is made from: the lock files (exact versions, hashes, in step with
pyproject.toml and with each other, and what this environment runs), the Dockerfile's use of
them, and compose.yaml, whose structure is checked here because Docker cannot run on this
machine: every service a deployment needs, commands the CLI accepts, settings the service
knows and accepts for production, and references that resolve."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from typing import Any

import pytest
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement

from app.cli import PROJECT_ROOT, build_parser
from app.core.config import Settings

PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>[^ ;\\]+)(?: ; (?P<marker>[^\\]+))?")


def locked(name: str) -> dict[str, tuple[str, str | None]]:
    """{normalized name: (version, marker)} of a lock file; every entry must carry hashes."""
    text = (PROJECT_ROOT / name).read_text()
    entries: dict[str, tuple[str, str | None]] = {}
    for block in re.split(r"\n(?=\S)", text):
        if block.startswith("#") or not block.strip():
            continue
        match = PIN.match(block)
        assert match, f"{name}: not an exact pin: {block.splitlines()[0]}"
        assert "--hash=sha256:" in block, f"{name}: {match['name']} has no hash"
        key = match["name"].lower().replace("_", "-").replace(".", "-")
        entries[key] = (match["version"], match["marker"] and match["marker"].strip())
    return entries


def pyproject() -> dict[str, Any]:
    return tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]


def normalized(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


@pytest.mark.parametrize(
    ("lock", "groups"),
    [("requirements.lock", ["runtime"]), ("requirements-dev.lock", ["runtime", "dev"])],
)
def test_the_lock_files_pin_every_requirement(lock: str, groups: list[str]) -> None:
    entries = locked(lock)
    requirements = list(pyproject()["dependencies"])
    if "dev" in groups:
        requirements += pyproject()["optional-dependencies"]["dev"]
    for line in requirements:
        requirement = Requirement(line)
        name = normalized(requirement.name)
        assert name in entries, f"{lock} lacks {requirement}: run python3 dev.py lock"
        version = entries[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (lock, line, version)


def test_the_two_lock_files_agree_and_runtime_needs_no_dev_tool() -> None:
    runtime, dev = locked("requirements.lock"), locked("requirements-dev.lock")
    assert set(runtime) < set(dev)
    assert {name: dev[name] for name in runtime} == runtime
    assert not {"pytest", "mypy", "ruff", "uv"} & set(runtime)


def test_this_environment_runs_the_locked_versions() -> None:
    """dev.py setup installed from requirements-dev.lock: what applies here is what runs."""
    for name, (version, marker) in locked("requirements-dev.lock").items():
        if marker and not Marker(marker).evaluate():
            continue
        assert importlib.metadata.version(name) == version, name


def test_the_dockerfile_installs_from_the_lock_and_the_project_without_dependencies() -> None:
    lines = (PROJECT_ROOT / "Dockerfile").read_text().splitlines()
    runs = [line for line in lines if line.startswith("RUN ")]
    assert any("pip install --require-hashes -r requirements.lock" in line for line in runs)
    assert any("pip install --no-deps -e ." in line and "pip check" in line for line in runs)
    assert not any(re.search(r"pip install (?!--require-hashes|--no-deps)", line) for line in runs)
    assert "requirements.lock" not in (PROJECT_ROOT / ".dockerignore").read_text().split()


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "compose.yaml").read_text())
    return document


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    values = {key: str(value) for key, value in service["environment"].items()}
    # Compose fills ${VAR:?message} from the caller's environment; give it a value here.
    return {key: re.sub(r"\$\{[A-Z_]+:\?[^}]*\}", "x" * 48, value) for key, value in values.items()}


def test_compose_has_what_a_deployment_needs(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api", "runner"}
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
    for name in ("api", "runner"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    for volume in (v.split(":")[0] for s in services.values() for v in s.get("volumes", [])):
        assert volume in compose["volumes"]
    # Published ports are on loopback only.
    for service in services.values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), port


@pytest.mark.parametrize(
    ("service", "command"), [("migrate", "migrate"), ("api", "serve"), ("runner", "run-scheduler")]
)
def test_compose_runs_commands_the_cli_accepts(
    compose: dict[str, Any], service: str, command: str
) -> None:
    argv = compose["services"][service]["command"]
    assert argv[0] == "billing-portal"
    args = build_parser().parse_args(argv[1:])
    assert args.command == command
    if command == "serve":
        assert args.migrate is False  # the migrate service did it, once
        assert args.host == "0.0.0.0"  # noqa: S104 (inside the container)


def test_compose_settings_are_valid_for_production(compose: dict[str, Any]) -> None:
    services = compose["services"]
    known = {f"BILLING_{field.upper()}" for field in Settings.model_fields} | {"DATABASE_URL"}
    for name in ("migrate", "api", "runner"):
        environment = environment_of(services[name])
        assert set(environment) <= known, set(environment) - known
        settings = Settings.model_validate(
            {key.removeprefix("BILLING_").lower(): value for key, value in environment.items()}
        )
        assert settings.env == "production"
        assert settings.metrics_enabled
    environment = environment_of(services["api"])
    postgres = services["postgres"]["environment"]
    url = environment["DATABASE_URL"]
    assert url == (
        f"postgresql+asyncpg://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{postgres['POSTGRES_DB']}"
    )
    assert environment["BILLING_REDIS_URL"].startswith("redis://redis:")
    port = environment["BILLING_METRICS_PORT"]
    assert f"127.0.0.1:9100:{port}" in services["api"]["ports"]
    assert f"127.0.0.1:9101:{port}" in services["runner"]["ports"]


def test_the_operations_guide_documents_compose_and_the_lock() -> None:
    guide = (PROJECT_ROOT / "docs" / "operations.md").read_text()
    for phrase in ("docker compose up", "python3 dev.py lock", "requirements.lock"):
        assert phrase in guide
    assert "docs/operations.md" in (PROJECT_ROOT / "README.md").read_text()
