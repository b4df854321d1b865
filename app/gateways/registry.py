"""Which payment gateways exist and how to build one by name.

Built-ins are "fake" and "stripe". Other packages add gateways through the
`billing_portal.gateways` entry-point group; each entry point loads a factory (usually a class)
called as `factory(settings, **options)` that must return a `PaymentGateway`::

    [project.entry-points."billing_portal.gateways"]
    acme = "acme_billing.gateway:AcmeGateway"

A plugin cannot replace a built-in name: the money path must not change because some package
happened to be installed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType
from typing import Any

from app.gateways.base import GatewaySettings, PaymentGateway
from app.gateways.fake import FakeGateway
from app.gateways.stripe import StripeGateway

__all__ = [
    "BUILTIN_GATEWAYS",
    "ENTRY_POINT_GROUP",
    "GatewayFactory",
    "GatewaySettings",
    "UnknownGatewayError",
    "available_gateways",
    "create_gateway",
]

ENTRY_POINT_GROUP = "billing_portal.gateways"

GatewayFactory = Callable[..., PaymentGateway]

BUILTIN_GATEWAYS: Mapping[str, GatewayFactory] = MappingProxyType(
    {"fake": FakeGateway, "stripe": StripeGateway}
)

_log = logging.getLogger(__name__)


class UnknownGatewayError(ValueError):
    """No gateway is registered under the requested name."""


def _plugins() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in BUILTIN_GATEWAYS:
            _log.warning(
                "ignoring gateway entry point %r (%s): built-in names cannot be replaced",
                entry.name,
                entry.value,
            )
            continue
        found.setdefault(entry.name, entry)
    return found


def available_gateways() -> list[str]:
    """Every name `create_gateway` accepts, sorted."""
    return sorted({*BUILTIN_GATEWAYS, *_plugins()})


def create_gateway(name: str, settings: GatewaySettings, **options: Any) -> PaymentGateway:
    """Build the gateway called `name`; `options` go to its factory (e.g. stripe's `clock`).

    Raises `UnknownGatewayError` for an unregistered name and `TypeError` when a plugin's
    factory returns something that is not a `PaymentGateway`.
    """
    key = name.strip().lower()
    factory = BUILTIN_GATEWAYS.get(key)
    if factory is None:
        plugin = _plugins().get(key)
        if plugin is None:
            names = ", ".join(repr(n) for n in available_gateways())
            raise UnknownGatewayError(f"unknown payment gateway {name!r}; available: {names}")
        factory = plugin.load()
    gateway = factory(settings, **options)
    if not isinstance(gateway, PaymentGateway):
        raise TypeError(f"gateway factory for {key!r} returned {type(gateway).__name__}")
    return gateway
