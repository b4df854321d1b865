"""A test of the contract suite itself: it runs over every gateway the registry knows, and a
registered gateway that has no harness makes it fail.

The suite is run for real, in a child pytest process, once as the repository stands and once with
a plugin gateway registered through an installed distribution's entry point (a `.dist-info`
directory on PYTHONPATH, which is how `importlib.metadata` finds installed packages).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ONE_CONTRACT_TEST = "test_satisfies_the_protocol"


def _run_contract_suite(extra_path: Path | None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extra_path), env.get("PYTHONPATH")]))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/gateways/test_contract.py",
            "-k",
            ONE_CONTRACT_TEST,
            "-p",
            "no:cacheprovider",
            "-v",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _install_plugin(site: Path, name: str) -> None:
    dist = site / "acme_gateway-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-gateway\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[billing_portal.gateways]\n{name} = app.gateways.fake:FakeGateway\n"
    )


def test_every_builtin_gateway_has_a_harness() -> None:
    run = _run_contract_suite(None)
    assert run.returncode == 0, run.stdout + run.stderr
    for case in ("fake (memory)", "fake (ledger file)", "stripe (simulator)"):
        assert f"{ONE_CONTRACT_TEST}[{case}] PASSED" in run.stdout


def test_a_registered_gateway_without_a_harness_fails_the_suite(tmp_path: Path) -> None:
    _install_plugin(tmp_path, "acme")
    run = _run_contract_suite(tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"{ONE_CONTRACT_TEST}[acme (no harness)] ERROR" in run.stdout
    assert "gateway 'acme' is registered but has no contract harness" in run.stdout
    # The gateways that do have a harness still ran and passed beside it.
    assert f"{ONE_CONTRACT_TEST}[fake (memory)] PASSED" in run.stdout
    assert f"{ONE_CONTRACT_TEST}[stripe (simulator)] PASSED" in run.stdout
