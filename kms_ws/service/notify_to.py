"""Where the server may send server-initiated calls (§6.10/§6.11): a subscriber's NotifyTo
is checked when it subscribes and again before every delivery, so an authenticated client
cannot make the server POST to internal addresses (server-side request forgery).

Allowed: a NotifyTo host that is the address the subscription came from, or inside a
network an administrator listed in SecuritySettings.notify_to_networks. A host name is
resolved once and every address it resolves to must be allowed; the caller then connects
to those checked addresses only (Target.addresses), sending the name in the Host header,
so a name that resolves elsewhere a moment later (DNS rebinding) cannot redirect the call.
127.0.0.1 and ::1 count as the same host ("localhost" resolves to both); other loopback
addresses do not. The same rule applies to wse:EndTo (SubscriptionEnd)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..domain.errors import NotifyToRefused

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


# The longest NotifyTo / EndTo address kept with a subscription (the store's columns).
MAX_ADDRESS = 2048


@dataclass(frozen=True)
class Target:
    """A checked address: connect only to `addresses` (each one allowed), in order."""

    scheme: str
    host: str  # the name (or literal) of the URL: TLS server name, certificate check
    port: int
    path: str  # path and query, as sent in the request line
    host_header: str  # the URL's host[:port], as the Host header
    addresses: tuple[Address, ...]


def check(notify_to: str, origin: str | None, networks: tuple[str, ...],
          what: str = "NotifyTo") -> Target:
    """The checked Target; raises NotifyToRefused unless every address of the host is
    allowed. `what` names the address in the reason (NotifyTo, EndTo)."""
    if len(notify_to) > MAX_ADDRESS:
        raise NotifyToRefused(f"{what} is longer than {MAX_ADDRESS} characters")
    try:
        parts = urlsplit(notify_to)
        host, port = parts.hostname, parts.port  # .port raises on a malformed port
    except ValueError:
        raise NotifyToRefused(f"{what} is not a valid http(s) address") from None
    if parts.scheme not in ("http", "https") or not host:
        raise NotifyToRefused(f"{what} must be an http(s) address")
    if parts.username is not None or parts.password is not None:
        raise NotifyToRefused(f"{what} carries no user name or password")
    allowed = [ipaddress.ip_network(n, strict=False) for n in networks]
    source = _address(origin)
    addresses = _resolve(host, what)
    for addr in addresses:
        if not _same_host(addr, source) and not any(addr in n for n in allowed):
            raise NotifyToRefused(
                f"{what} host {host} is neither the address this request came from nor in "
                f"a network the administrator allowed for notifications (notify_to_networks)")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path,
                  parts.netloc, tuple(dict.fromkeys(addresses)))


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


def _resolve(host: str, what: str) -> list[Address]:
    literal = _address(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise NotifyToRefused(f"{what} host {host} does not resolve") from None
    found = [a for a in (_address(str(i[4][0]).split("%", 1)[0]) for i in infos) if a]
    if not found:
        raise NotifyToRefused(f"{what} host {host} does not resolve")
    return found
