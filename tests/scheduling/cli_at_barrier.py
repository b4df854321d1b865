"""`python -m tests.scheduling.cli_at_barrier <args>`: `billing-portal <args>` (the same
`app.cli.main`), started in two steps so that several processes can begin at one moment.

It imports everything the command needs (what takes a process its first second or two),
prints "ready", waits for a line on stdin, and only then runs the command. The tests let all
their processes go once every one of them is ready (see `Spawner.start_together`).
"""

import importlib
import sys

from app.cli import main

# What the commands import when they run, imported now: after "go", no process is still
# busy importing while the others work.
LAZY_IMPORTS = (
    "app.core.db",
    "app.core.logging",
    "app.payments.reconcile",
    "app.scheduler.runner",
    "app.wiring",
)

if __name__ == "__main__":
    for module in LAZY_IMPORTS:
        importlib.import_module(module)
    print("ready", flush=True)
    sys.stdin.readline()
    raise SystemExit(main(sys.argv[1:]))
