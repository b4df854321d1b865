#!/usr/bin/env python3
"""Developer commands for billing-portal: nothing to install first but Python 3.11+.

The first command creates the virtualenv (.venv, or $BILLING_DEV_VENV) and installs into it
the locked dependencies (requirements-dev.lock: exact versions and hashes), then the project
itself; a changed pyproject.toml or lock file is reinstalled on the next command.
`python3 dev.py lock` regenerates the lock files from pyproject.toml.
"""

import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

# Kept free of newer syntax so that an old Python gets this message, not a SyntaxError.
if sys.version_info < (3, 11):  # noqa: UP036
    sys.exit(f"dev.py needs Python 3.11 or newer; {sys.executable} is {sys.version.split()[0]}")

ROOT = Path(__file__).resolve().parent
VENV = ROOT / os.environ.get("BILLING_DEV_VENV", ".venv")  # an absolute value replaces ROOT
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".billing-dev-pyproject.sha256"
# What runs the service (the Dockerfile installs it) and that plus the dev tools (here, CI).
LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
LOCK_PYTHON = "3.11"  # the oldest Python the project supports; the locks hold for every newer one
# Run in the venv after an install: is every requirement of the project and its dev extra
# met by what the lock installed? (pip itself checks neither the extra nor a stale lock.)
UNMET_REQUIREMENTS = """
import importlib.metadata as md
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
for line in md.requires("billing-portal") or []:
    req = Requirement(line)
    if req.marker and not req.marker.evaluate({"extra": "dev"}):
        continue
    try:
        version = md.version(req.name)
    except md.PackageNotFoundError:
        print(f"{req} (not in the lock)")
        continue
    if not req.specifier.contains(version, prereleases=True):
        print(f"{req} (the lock has {version})")
"""
CACHES = [
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    "build",
    "dist",
    "node_modules",
]


def note(message: str) -> None:
    print(f"dev.py: {message}", file=sys.stderr, flush=True)


def fail(message: str) -> int:
    note(f"error: {message}")
    return 1


def tool(name: str) -> str:
    return str(BIN / (f"{name}.exe" if os.name == "nt" else name))


def _terminal_sent_it() -> bool:
    """True when Ctrl-C came from our terminal, which signals the child as well."""
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (AttributeError, OSError, ValueError):
        return False


def call(cmd: Sequence[str], env: Mapping[str, str] | None = None, log: Path | None = None) -> int:
    """Run cmd in the project root, passing SIGINT/SIGTERM on to it; returns a shell-style code.

    With log, the command's output goes to that file instead of ours.
    """
    out = log.open("w") if log else None
    err = subprocess.STDOUT if log else None
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err)  # noqa: S603

    def forward(signum: int, _frame: FrameType | None) -> None:
        if proc.poll() is None and not (signum == signal.SIGINT and _terminal_sent_it()):
            proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if out:
            out.close()
    return code if code >= 0 else 128 - code


def pip(*args: str) -> None:
    """pip install into the venv; its chatter goes to a log that is shown only on failure."""
    log = VENV / "dev-pip.log"
    code = call([tool("python"), "-m", "pip", "install", "-q", *args], log=log)
    if code != 0:
        lines = log.read_text(errors="replace").splitlines()
        print("\n".join(lines[-40:]), file=sys.stderr)
        sys.exit(f"dev.py: error: pip install {' '.join(args)} failed (exit {code}); log: {log}")


def create_venv() -> None:
    if Path(tool("python")).exists():
        return
    note(f"creating virtualenv {VENV} with Python {sys.version.split()[0]}")
    if call([sys.executable, "-m", "venv", str(VENV)]) != 0:
        sys.exit(
            f"dev.py: error: could not create {VENV}; "
            "on Debian/Ubuntu the venv module comes with the python3-venv package"
        )
    note("upgrading pip")
    pip("--upgrade", "pip")


def bootstrap() -> None:
    """Create the virtualenv when missing; install the locked dependencies and the project
    when pyproject.toml or the lock changed."""
    create_venv()
    if not DEV_LOCK.exists():
        sys.exit(f"dev.py: error: {DEV_LOCK.name} is missing: run `python3 dev.py lock`")
    digest = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + DEV_LOCK.read_bytes()
    ).hexdigest()
    if not STAMP.exists() or STAMP.read_text().strip() != digest:
        note(f"installing the locked dependencies ({DEV_LOCK.name}) and the project, please wait")
        pip("--require-hashes", "-r", str(DEV_LOCK))
        pip("--no-deps", "-e", ".")
        unmet = subprocess.run(  # noqa: S603
            [tool("python"), "-c", UNMET_REQUIREMENTS], capture_output=True, text=True
        ).stdout.strip()
        if unmet:
            sys.exit(
                f"dev.py: error: {DEV_LOCK.name} does not meet pyproject.toml:\n{unmet}\n"
                "run `python3 dev.py lock` (and commit both lock files)"
            )
        STAMP.write_text(digest + "\n")
    # Children (tests that run billing-portal, alembic's env.py ...) find the venv's tools first.
    os.environ["VIRTUAL_ENV"] = str(VENV)
    os.environ["PATH"] = os.pathsep.join([str(BIN), os.environ.get("PATH", "")])


def _dev_pin(name: str) -> str:
    """The `name==version` pinned among pyproject.toml's dev dependencies."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["optional-dependencies"]["dev"]:
        if requirement.split("==")[0].strip().lower() == name:
            return str(requirement)
    sys.exit(f"dev.py: error: pyproject.toml pins no {name} among the dev dependencies")


def cmd_lock(upgrade: bool) -> int:
    """Resolve pyproject.toml into the lock files with uv (pinned in the dev dependencies):
    for every platform and Python 3.11+, with the hashes of every file of each release.
    Versions already locked are kept unless --upgrade; then reinstall from the new lock."""
    create_venv()
    pip(_dev_pin("uv"))
    env = {**os.environ, "UV_CUSTOM_COMPILE_COMMAND": "python3 dev.py lock"}
    common = ["--universal", "--generate-hashes", "--python-version", LOCK_PYTHON, "--quiet"]
    if upgrade:
        common.append("--upgrade")
    # The dev lock first, as the superset; the runtime lock takes the same versions from it.
    steps = {
        DEV_LOCK: ["--extra", "dev"],
        LOCK: ["--constraint", DEV_LOCK.name],
    }
    for lock, extra in steps.items():
        note(f"lock: resolving {lock.name}")
        argv = [tool("uv"), "pip", "compile", "pyproject.toml", *extra, *common, "-o", lock.name]
        code = call(argv, env)
        if code != 0:
            return fail(f"uv pip compile for {lock.name} failed (exit {code})")
    bootstrap()
    note(f"lock: wrote {LOCK.name} and {DEV_LOCK.name}; commit both")
    return 0


def cmd_run(host: str, port: int) -> int:
    bootstrap()
    portal = tool("billing-portal")
    code = call([portal, "seed-demo", "--if-empty"])
    if code != 0:
        return fail(f"billing-portal seed-demo failed (exit {code})")
    argv = [portal, "serve", "--host", host, "--port", str(port)]
    if os.name != "posix":
        return call(argv)
    sys.stdout.flush()
    os.execv(portal, argv)  # noqa: S606 (the server replaces us, so signals reach it directly)


def cmd_test(pytest_args: Sequence[str]) -> int:
    bootstrap()
    code = call([tool("python"), "-m", "pytest", *pytest_args])
    if code == 5:
        return fail("pytest collected no tests (exit 5): the suite or the selection is empty")
    return code


def cmd_bench(full: bool) -> int:
    """The benchmarks of bench/README.md, one after another (short versions unless full)."""
    bootstrap()
    python = tool("python")
    quick = [] if full else ["--quick"]
    runner = ["--payments", "10000"] if full else ["--payments", "600"]
    runs = [
        [python, "bench/api_bench.py", "all", *quick],
        # P4: against a 200 ms gateway (where CPU is not the limit), then a 50 ms one.
        [python, "bench/runner_throughput.py", *runner, "--latency", "0.2"],
        [python, "bench/runner_throughput.py", *runner, "--latency", "0.05"],
        # P6: pay-now over 1 and 3 API replicas against a 50 ms gateway; reconcile.
        [python, "bench/paynow_bench.py", *quick],
    ]
    failed = 0
    for cmd in runs:
        note(" ".join(cmd[1:]))
        failed += call(cmd) != 0
    return fail(f"{failed} benchmark(s) failed") if failed else 0


def cmd_lint() -> int:
    bootstrap()
    ruff = tool("ruff")
    checks = {
        "ruff check": [ruff, "check", "."],
        "ruff format --check": [ruff, "format", "--check", "."],
        "mypy (strict)": [tool("mypy"), "app", "dev.py"],
    }
    failed = []
    for name, cmd in checks.items():
        note(f"lint: {name}")
        code = call(cmd)
        note(f"lint: {name}: {'ok' if code == 0 else f'FAILED (exit {code})'}")
        if code == 128 + signal.SIGINT:  # Ctrl-C stops the whole lint, not one check
            return code
        if code != 0:
            failed.append(name)
    return fail(f"lint failed: {', '.join(failed)}") if failed else 0


def cmd_check_migrations() -> int:
    bootstrap()
    with tempfile.TemporaryDirectory(prefix="billing-migrations-") as tmp:
        database = Path(tmp) / "check.db"
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite+aiosqlite:///{database.as_posix()}",
            "BILLING_DATA_DIR": tmp,
        }
        for step in (["upgrade", "head"], ["check"]):
            note(f"alembic {' '.join(step)} on a throwaway SQLite database")
            code = call([tool("alembic"), *step], env)
            if code != 0:
                return fail(f"alembic {' '.join(step)} failed (exit {code})")
    note("migrations: ok, the models match the migrations")
    return 0


def cmd_openapi() -> int:
    bootstrap()
    return call([tool("billing-portal"), "export-openapi"])


def cmd_lint_openapi() -> int:
    """Redocly CLI's recommended rules over openapi/openapi.json: errors fail, warnings are
    shown. The CLI is the one package-lock.json pins, installed with `npm ci` when it changed."""
    npm = shutil.which("npm")
    if npm is None:
        return fail("lint-openapi needs Node.js 20 or newer with npm (Debian: nodejs, npm)")
    lock = ROOT / "package-lock.json"
    stamp = ROOT / "node_modules" / ".billing-dev-lock.sha256"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text().strip() != digest:
        note("installing the npm tools of package-lock.json (npm ci)")
        code = call([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"])
        if code != 0:
            return fail(f"npm ci failed (exit {code})")
        stamp.write_text(digest + "\n")
    # No telemetry and no update check: the CLI has nothing to ask the network.
    env = {**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"}
    redocly = ROOT / "node_modules" / ".bin" / "redocly"
    return call([str(redocly), "lint", "--format", "stylish", "openapi/openapi.json"], env)


def cmd_clean(venv: bool) -> int:
    """Remove caches and build output; the venv only when asked, data/ never."""
    doomed = [ROOT / name for name in CACHES] + list(ROOT.glob("*.egg-info"))
    for top, dirs, _files in os.walk(ROOT):
        here = Path(top)
        dirs[:] = [d for d in dirs if d != ".git" and here / d != VENV]
        doomed += [here / d for d in dirs if d == "__pycache__"]
        dirs[:] = [d for d in dirs if d != "__pycache__"]
    if venv:
        doomed.append(VENV)
    for path in doomed:
        if path.exists():
            note(f"removing {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
            shutil.rmtree(path)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python3 dev.py",
        description=__doc__,
        epilog="examples: python3 dev.py run --port 8080 | python3 dev.py test -x -k invoices",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="seed demo data (once), then serve the API")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    sub.add_parser("test", help="run pytest, passing any further arguments on")
    sub.add_parser("lint", help="ruff check, ruff format --check, mypy --strict")
    bench = sub.add_parser("bench", help="the benchmarks in bench/ (about 10 minutes)")
    bench.add_argument(
        "--full", action="store_true", help="the issue's sizes (an hour or more on 2 cores)"
    )
    sub.add_parser("check-migrations", help="alembic upgrade head + check on a scratch SQLite")
    sub.add_parser("openapi", help="write openapi/openapi.json")
    sub.add_parser("lint-openapi", help="Redocly's recommended rules over openapi/openapi.json")
    sub.add_parser("setup", help="only create or refresh the virtualenv")
    lock = sub.add_parser("lock", help="regenerate the lock files from pyproject.toml")
    lock.add_argument(
        "--upgrade", action="store_true", help="newest allowed versions, not the locked ones"
    )
    clean = sub.add_parser("clean", help="remove caches and build output")
    clean.add_argument("--venv", action="store_true", help="remove the virtualenv too")
    return p


def main(argv: list[str]) -> int:
    if argv[:1] == ["test"]:  # everything after "test" belongs to pytest, untouched
        return cmd_test(argv[1:])
    args = parser().parse_args(argv)
    if args.command == "run":
        return cmd_run(args.host, args.port)
    if args.command == "lint":
        return cmd_lint()
    if args.command == "bench":
        return cmd_bench(args.full)
    if args.command == "check-migrations":
        return cmd_check_migrations()
    if args.command == "openapi":
        return cmd_openapi()
    if args.command == "lock":
        return cmd_lock(args.upgrade)
    if args.command == "lint-openapi":
        return cmd_lint_openapi()
    if args.command == "clean":
        return cmd_clean(args.venv)
    bootstrap()  # setup
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
