"""The event tests run in the scheduling tests' world (a frozen clock, a scene with a card,
the runner) and, for webhook endpoints' events, beside a real receiver."""

from tests.payments.fixtures import billing
from tests.scheduling.conftest import clock, gateway, runner, runner_settings, scene
from tests.webhooks.conftest import receiver, webhook_settings

__all__ = [
    "billing",
    "clock",
    "gateway",
    "receiver",
    "runner",
    "runner_settings",
    "scene",
    "webhook_settings",
]
