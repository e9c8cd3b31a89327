"""HTTP POST to a checked, pinned address (service.notify_to.Target).

Server-initiated calls (UpdatePending, GetStatus, SubscriptionEnd) connect only to the
addresses the NotifyTo / EndTo host resolved to when it was checked, never to whatever
the name resolves to at connection time: the request line and the Host header carry the
name, the socket goes to the checked IP (DNS rebinding cannot redirect a delivery).
With https the TLS server name and the certificate check use the name as well."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import certifi
import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError

from ..domain.errors import EndpointUnreachable
from ..service.notify_to import Address, Target

_MAX_POOLS = 64


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


class PinnedPoster:
    """Keeps one small connection pool per (scheme, address, port, name)."""

    def __init__(self, timeout: float, max_answer_bytes: int = 1 << 20,
                 ca_file: Path | None = None, connections: int = 2) -> None:
        """ca_file: the CA certificates that verify https endpoints (default: certifi's
        bundle of public CAs); connections: how many are kept open per pool (as many as
        calls go out at once)."""
        self.connections = connections
        self.timeout = timeout
        self.max_answer_bytes = max_answer_bytes  # more is not read (and is refused)
        self.ca_file = str(ca_file) if ca_file is not None else certifi.where()
        self._pools: dict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = {}
        self._lock = threading.Lock()

    def post(self, target: Target, body: bytes, headers: dict[str, str]) -> Answer:
        """POST to the first checked address that accepts a connection. No redirects, no
        retries of a request that reached the endpoint."""
        what = f"{target.scheme}://{target.host_header}"
        for addr in target.addresses:
            pool = self._pool(target, addr)
            try:
                r = pool.urlopen("POST", target.path, body=body,
                                 headers={**headers, "Host": target.host_header},
                                 redirect=False, retries=False, assert_same_host=False,
                                 preload_content=False,
                                 timeout=urllib3.Timeout(connect=self.timeout,
                                                         read=self.timeout))
            except (NewConnectionError, ConnectTimeoutError):
                continue  # not listening on this address: try the next checked one
            except HTTPError as exc:
                raise EndpointUnreachable(f"{what}: {type(exc).__name__}") from None
            return self._answer(r, what)
        raise EndpointUnreachable(f"{what}: no connection")

    def _answer(self, r: urllib3.BaseHTTPResponse, what: str) -> Answer:
        try:
            data = r.read(self.max_answer_bytes + 1)
        except HTTPError as exc:
            r.close()
            raise EndpointUnreachable(f"{what}: {type(exc).__name__}") from None
        if len(data) > self.max_answer_bytes:
            r.close()  # the rest is not read: the connection cannot be reused
            raise EndpointUnreachable(f"{what} answered more than {self.max_answer_bytes} "
                                      "bytes")
        r.release_conn()
        return Answer(r.status, data)

    def _pool(self, target: Target, addr: Address) -> urllib3.HTTPConnectionPool:
        slot = (target.scheme, str(addr), target.port, target.host)
        with self._lock:
            pool = self._pools.get(slot)
            if pool is None:
                if len(self._pools) >= _MAX_POOLS:
                    for old in self._pools.values():
                        old.close()
                    self._pools.clear()
                pool = self._pools[slot] = _new_pool(target, addr, self.ca_file,
                                                      self.connections)
            return pool

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()


def _new_pool(target: Target, addr: Address, ca_file: str,
              connections: int) -> urllib3.HTTPConnectionPool:
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            str(addr), target.port, server_hostname=target.host,
            assert_hostname=target.host, cert_reqs="CERT_REQUIRED", ca_certs=ca_file,
            maxsize=connections)
    return urllib3.HTTPConnectionPool(str(addr), target.port, maxsize=connections)
