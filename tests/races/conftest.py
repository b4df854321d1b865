from tests.autopay.fixtures import _postgres_only, clock, gateway, runner, runner_settings, scene
from tests.payments.fixtures import lenient_client

__all__ = [
    "_postgres_only",
    "clock",
    "gateway",
    "lenient_client",
    "runner",
    "runner_settings",
    "scene",
]
