"""Per-request state: who is calling, the unit of work, the time, the request id."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..crypto.master_key import Keyring
from ..crypto.sealing import Aead
from ..domain.model import Endpoint
from ..security.proofs import PepProof
from ..security.settings import SecuritySettings
from .ports import UnitOfWork


@dataclass(frozen=True)
class Transport:
    """How the request arrived: over TLS, from which client address (the connection's
    peer, or the client a trusted proxy names: kms_ws.security.forwarded), loopback."""

    secure: bool = False
    loopback: bool = False
    remote_addr: str | None = None

    @property
    def source(self) -> str:
        """Whom failed authentications are counted against (backoff, refusal audit): the
        IPv4 address, the /64 network of an IPv6 address (one host holds a whole /64),
        "local" for an in-process caller."""
        if not self.remote_addr:
            return "local"
        try:
            ip = ipaddress.ip_address(self.remote_addr)
        except ValueError:
            return self.remote_addr[:64]
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.ipv4_mapped is not None:
                return str(ip.ipv4_mapped)
            return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
        return str(ip)


@dataclass
class RequestContext:
    caller: Endpoint | None
    uow: UnitOfWork
    now: datetime
    request_id: str
    settings: SecuritySettings
    master: Keyring
    outbound: Any = None  # calls to client endpoints (§6.10 GetStatus); kms_ws.wsman.delivery
    transport: Transport = field(default_factory=Transport)
    pep_proof: PepProof | None = None  # presented with the request (§4.6)
    pep_proof_verified: bool = False  # service.pep_auth verified it for this operation
    # Writes that record a read (delivery use tracking): run after the handler, in the
    # same write transaction, or in a short one of their own after a read transaction.
    deferred: list[Callable[[UnitOfWork], None]] = field(default_factory=list)
    _context_mac: bytes | None = field(default=None, repr=False)

    def defer(self, write: Callable[[UnitOfWork], None]) -> None:
        self.deferred.append(write)

    def sealing_key(self) -> tuple[str, Aead]:
        """The master key that seals new values: as recorded in the store, read inside
        this (write) transaction so a concurrent rotation is never missed."""
        current = self.uow.sealed.current_master_key_id() or self.master.key_id
        return current, self.master.aead_for(current)

    def context_mac_key(self) -> bytes:
        """The enumeration-context MAC key of the current master key (a rotation
        invalidates outstanding enumeration contexts; clients start a new enumeration).
        Read once per request: a Pull opens one context and seals another."""
        if self._context_mac is None:
            self._context_mac = self.master.context_mac_key_for(
                self.uow.sealed.current_master_key_id() or self.master.key_id)
        return self._context_mac

    def unwrapped_allowed(self) -> bool:
        mode = self.settings.unwrapped_delivery
        return mode != "never" and (self.transport.secure or
                                    (mode == "tls-or-loopback" and self.transport.loopback))
