"""The client's address behind reverse proxies (`BILLING_TRUSTED_PROXIES`).

X-Forwarded-For is believed only when the connection comes from a trusted proxy, and only as
far as the chain stays inside trusted proxies: reading from the right, the first address that
is not a trusted proxy is the client. Anything a client writes into the header itself sits to
the left of that and is ignored, so nobody picks their own address (and with it a fresh
throttle count). uvicorn's own proxy-header handling is switched off (`serve`), so this is
the one place that decides.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> list[Network]:
    """`10.0.0.0/8, 192.0.2.1` → networks; a bare address is a network of one."""
    return [
        ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()
    ]


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(peer: str, forwarded_for: str | None, networks: Sequence[Network]) -> str:
    if not forwarded_for or not _trusted(peer, networks):
        return peer
    client = peer
    for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # garbage in the chain: trust nothing to the left of it
        client = hop
        if not _trusted(hop, networks):
            break
    return client


class TrustedProxyMiddleware:
    """Puts the client's address (see `client_address`) into the ASGI scope, so every reader
    of `request.client` (sign-in throttling, consent records, logs) sees the same one."""

    def __init__(self, app: ASGIApp, *, networks: Sequence[Network]) -> None:
        self.app = app
        self.networks = list(networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.networks and scope.get("client"):
            host, port = scope["client"]
            forwarded = [v for k, v in scope["headers"] if k == b"x-forwarded-for"]
            header = ",".join(v.decode("latin-1") for v in forwarded) or None
            address = client_address(host, header, self.networks)
            if address != host:
                scope = dict(scope, client=(address, port))
        await self.app(scope, receive, send)
