from tests.autopay.fixtures import _postgres_only, clock, gateway, runner, runner_settings, scene

__all__ = ["_postgres_only", "clock", "gateway", "runner", "runner_settings", "scene"]
