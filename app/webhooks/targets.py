"""Where a webhook may be sent: a guard against server-side request forgery.

Only `https://` URLs whose host resolves to public addresses only: never a private, loopback,
link-local, shared, reserved or multicast one (cloud metadata at 169.254.169.254 included).
Checked when an endpoint is created or its URL changed, and again before every attempt, when
the request is pinned to the address just checked, so a name that resolves differently in
between (DNS rebinding) cannot redirect it. `BILLING_WEBHOOKS_ALLOW_PRIVATE_URLS=true` lifts
both rules (plain `http://` and private targets), for development and tests only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_LENGTH = 2048


class TargetRefused(Exception):
    """The URL may not be called; the message says why, for the caller."""


def check_url(url: str, *, allow_private: bool) -> None:
    """The URL's shape: absolute, https (or http when private targets are allowed), no
    credentials in it."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise TargetRefused("The URL is not valid.") from exc
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise TargetRefused("Webhook URLs must use https://.")
    if not parts.hostname:
        raise TargetRefused("The URL has no host.")
    if parts.username or parts.password:
        raise TargetRefused("The URL must not carry credentials.")
    if parts.fragment:
        raise TargetRefused("The URL must not have a fragment (#...).")


NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address carried inside an IPv6 one (mapped, 6to4, Teredo, NAT64) is judged
        # as the IPv4 address it reaches.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and not is_public(embedded):
            return False
    return address.is_global and not address.is_multicast


async def public_addresses(host: str, port: int) -> list[IPAddress]:
    """The host's addresses, all of them public, or TargetRefused."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        found = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise TargetRefused(f"The host {host!r} could not be resolved.") from exc
        found = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not found:
        raise TargetRefused(f"The host {host!r} could not be resolved.")
    refused = [a for a in found if not is_public(a)]
    if refused:
        raise TargetRefused(
            f"The host {host!r} resolves to a private, loopback or link-local address "
            f"({refused[0]}): webhooks go to public addresses only."
        )
    return found


@dataclass(frozen=True)
class Target:
    """A request ready to send: the URL (pinned to a checked address) and what goes with it."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)


async def resolve_target(url: str, *, allow_private: bool) -> Target:
    check_url(url, allow_private=allow_private)
    if allow_private:
        return Target(url)
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise TargetRefused("The URL is not valid.") from exc
    port = parsed.port or 443
    address = (await public_addresses(parsed.host, port))[0]
    # Connect to the address just checked; the name still goes in Host and in TLS (SNI and
    # certificate verification), so the receiver sees its own name.
    return Target(
        str(parsed.copy_with(host=str(address))),
        headers={"Host": parsed.netloc.decode("ascii")},
        extensions={"sni_hostname": parsed.host},
    )
