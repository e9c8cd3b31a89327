"""How a request reached the server: over TLS or not, from which client address.

The connection says it: the scheme the HTTP front served it with (`wsgi.url_scheme`:
https only on a TLS socket) and the peer address (`REMOTE_ADDR`). Forwarded headers are
whatever the sender wrote, so they are believed only from a proxy the operator named
(`trusted_proxies`: addresses or CIDR networks, none by default). From such a proxy:

- `X-Forwarded-Proto: https|http` is the scheme between the client and the proxy;
- `X-Forwarded-For` is read from the right: addresses of trusted proxies are skipped and
  the first other address is the client (the proxy's own address if the header is
  missing, or stops being a readable address before one is found).

`X-Forwarded-Ssl`, `X-Forwarded-Protocol`, `Forwarded` and the rest are never read.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(values: Iterable[str]) -> tuple[Network, ...]:
    """The networks of `trusted_proxies`; ValueError names the first unreadable one."""
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(str(value).strip(), strict=False))
        except ValueError:
            raise ValueError(f"trusted_proxies: {value!r} is not an IP address or CIDR "
                             "network") from None
    return tuple(out)


@dataclass(frozen=True)
class Origin:
    secure: bool  # HTTPS all the way from the client (to us, or to the trusted proxy)
    client: str | None  # the client's address
    proxy: str | None = None  # the trusted proxy the request came through


class ProxyTrust:
    """The configured trusted proxies, and what a request's origin is under them."""

    def __init__(self, trusted: Iterable[str] = ()) -> None:
        self.networks = networks(trusted)

    def trusts(self, address: Address | None) -> bool:
        return address is not None and any(address in n for n in self.networks)

    def origin(self, environ: Mapping[str, Any]) -> Origin:
        peer = environ.get("REMOTE_ADDR") or None
        secure = environ.get("wsgi.url_scheme") == "https"
        if not self.networks or not self.trusts(_address(peer)):
            return Origin(secure, peer)
        proto = str(environ.get("HTTP_X_FORWARDED_PROTO", "")).strip().lower()
        if proto in ("http", "https"):
            secure = proto == "https"
        return Origin(secure, self._client(peer, environ.get("HTTP_X_FORWARDED_FOR")), peer)

    def _client(self, peer: str | None, forwarded_for: str | None) -> str | None:
        client = peer
        for hop in reversed((forwarded_for or "").split(",")):
            address = _address(hop)
            if address is None:
                break
            client = str(address)
            if not self.trusts(address):
                break
        return client


def _address(text: str | None) -> Address | None:
    """An address as X-Forwarded-For writes it: bare, or IPv6 in brackets."""
    value = (text or "").strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None
