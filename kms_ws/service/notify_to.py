"""Where the server may send server-initiated calls (§6.10/§6.11): a subscriber's NotifyTo
is checked when it subscribes and again before every delivery, so an authenticated client
cannot make the server POST to internal addresses (server-side request forgery).

Allowed: a NotifyTo host that is the address the subscription came from, or inside a
network an administrator listed in SecuritySettings.notify_to_networks. A host name is
resolved and every address it resolves to must be allowed. 127.0.0.1 and ::1 count as the
same host ("localhost" resolves to both); other loopback addresses do not."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from ..domain.errors import NotifyToRefused

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def check(notify_to: str, origin: str | None, networks: tuple[str, ...]) -> None:
    """Raise NotifyToRefused unless every address of the NotifyTo host is allowed."""
    try:
        parts = urlsplit(notify_to)
        host, _ = parts.hostname, parts.port  # .port raises on a malformed port
    except ValueError:
        raise NotifyToRefused("NotifyTo is not a valid http(s) address") from None
    if parts.scheme not in ("http", "https") or not host:
        raise NotifyToRefused("NotifyTo must be an http(s) address")
    allowed = [ipaddress.ip_network(n, strict=False) for n in networks]
    source = _address(origin)
    for addr in _resolve(host):
        if not _same_host(addr, source) and not any(addr in n for n in allowed):
            raise NotifyToRefused(
                f"NotifyTo host {host} is neither the address this request came from nor in "
                f"a network the administrator allowed for notifications (notify_to_networks)")


_LOCALHOST = {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}


def _same_host(addr: Address, origin: Address | None) -> bool:
    return addr == origin or (addr in _LOCALHOST and origin in _LOCALHOST)


def _address(text: str | None) -> Address | None:
    try:
        addr = ipaddress.ip_address(text or "")
    except ValueError:
        return None
    mapped = getattr(addr, "ipv4_mapped", None)
    return mapped or addr


def _resolve(host: str) -> list[Address]:
    literal = _address(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise NotifyToRefused(f"NotifyTo host {host} does not resolve") from None
    found = [a for a in (_address(str(i[4][0]).split("%", 1)[0]) for i in infos) if a]
    if not found:
        raise NotifyToRefused(f"NotifyTo host {host} does not resolve")
    return found
