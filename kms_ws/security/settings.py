"""The one frozen security-settings dataclass, with safe defaults."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, fields, replace
from typing import Any

_XMLDSIG_MORE = "http://www.w3.org/2001/04/xmldsig-more#"
_XMLENC = "http://www.w3.org/2001/04/xmlenc#"

SIGNATURE_ALGORITHMS = tuple(f"{_XMLDSIG_MORE}{name}" for name in (
    "ecdsa-sha256", "ecdsa-sha384", "ecdsa-sha512", "rsa-sha256", "rsa-sha384", "rsa-sha512",
    "hmac-sha256", "hmac-sha384", "hmac-sha512"))
DIGEST_ALGORITHMS = (f"{_XMLENC}sha256", f"{_XMLDSIG_MORE}sha384", f"{_XMLENC}sha512")


UNWRAPPED_DELIVERY = ("never", "tls", "tls-or-loopback")


@dataclass(frozen=True)
class SecuritySettings:
    # Message limits, enforced before authentication.
    max_message_bytes: int = 512 * 1024
    max_xml_depth: int = 32
    max_xml_elements: int = 20_000
    # Credentials.
    session_ttl_seconds: int = 3600
    password_cache_seconds: int = 300
    # Failed password authentications (service.authentication). Backoff: once a user name
    # has failed backoff_after_failed_authentications times — existing or not — or a
    # source address (an IPv6 /64) source_backoff_after_failed_authentications times,
    # further attempts are refused unchecked for 1 s, then 2, 4 ... up to
    # backoff_max_seconds after each further failure; counts are forgotten after
    # failure_memory_seconds without a failure. 0: no backoff of that kind.
    backoff_after_failed_authentications: int = 3
    source_backoff_after_failed_authentications: int = 20
    backoff_max_seconds: int = 300
    failure_memory_seconds: int = 900
    # Lockout: a client whose password was wrong this many times in a row (0: never) is
    # Locked for lockout_seconds (0: until an administrator unlocks it).
    lock_after_failed_authentications: int = 10
    lockout_seconds: int = 900
    # Refusals of unauthenticated requests are audited per source address and reason per
    # interval: the first at once, the count when the interval closes (service.refusals).
    failure_audit_interval_seconds: int = 60
    # Passwords and HMAC secrets (HTTP Basic, a UsernamePassword in a message, a secret an
    # administrator sets) over plain HTTP (no TLS) are refused unless allowed (local use).
    allow_basic_over_http: bool = False
    # Unwrapped key delivery (WrappingType none) to a caller that registered no wrapping key:
    # "tls" - only over HTTPS; "tls-or-loopback" - also over plain HTTP from a loopback
    # address (local tools, tests); "never" - every delivery must be wrapped. A caller
    # with registered wrapping keys always gets wrapped keys.
    unwrapped_delivery: str = "tls-or-loopback"
    # GetRandomBytes upper bound per request (bytes).
    max_random_bytes: int = 65536
    # PushAuditMessage quota per client and minute, shared by every worker and node
    # (service/audit.py): messages, and bytes of their Event and Message text. 0: no bound.
    push_audit_messages_per_minute: int = 1200
    push_audit_bytes_per_minute: int = 1024 * 1024
    # WS-Management Identify answered without credentials (product name and version are
    # then visible to anyone who can reach the port). Off by default.
    identify_without_credentials: bool = False
    # Where server-initiated calls (UpdatePending, GetStatus) may go besides the address a
    # subscription came from: CIDR networks, e.g. ("10.20.0.0/16",). Empty: only there.
    notify_to_networks: tuple[str, ...] = ()
    # Realm given to clients and keys that name none.
    default_realm: str = "realm://localhost/default"
    # Message signatures (WS-Security 1.1, XML Signature, exclusive c14n).
    # Required for every request, or per realm of the caller: {"realm://...": true}.
    require_signature: bool = False
    require_signature_realms: tuple[tuple[str, bool], ...] = ()
    # The signed wsu:Timestamp: a message is accepted for timestamp_ttl_seconds after its
    # Created time, with clock_skew_seconds of tolerance either way.
    timestamp_ttl_seconds: int = 300
    clock_skew_seconds: int = 60
    # Algorithms accepted (and used). SHA-1 based ones are never accepted.
    signature_algorithms: tuple[str, ...] = SIGNATURE_ALGORITHMS
    digest_algorithms: tuple[str, ...] = DIGEST_ALGORITHMS
    # The server signs every response with its own key (data directory).
    sign_responses: bool = True

    def __post_init__(self) -> None:
        weak = [a for a in self.signature_algorithms + self.digest_algorithms
                if "sha1" in a.lower() or a not in SIGNATURE_ALGORITHMS + DIGEST_ALGORITHMS]
        if weak:
            raise ValueError(f"algorithms not accepted: {', '.join(weak)}")
        if self.timestamp_ttl_seconds <= 0 or self.clock_skew_seconds < 0:
            raise ValueError("timestamp_ttl_seconds > 0 and clock_skew_seconds >= 0")
        if self.push_audit_messages_per_minute < 0 or self.push_audit_bytes_per_minute < 0:
            raise ValueError("push_audit_messages_per_minute and push_audit_bytes_per_minute "
                             "are >= 0 (0: no bound)")
        for name in ("backoff_after_failed_authentications",
                     "source_backoff_after_failed_authentications", "backoff_max_seconds",
                     "lock_after_failed_authentications", "lockout_seconds"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"{name} is a whole number >= 0")
        for name in ("failure_memory_seconds", "failure_audit_interval_seconds"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} is a whole number >= 1")
        if self.unwrapped_delivery not in UNWRAPPED_DELIVERY:
            raise ValueError(f"unwrapped_delivery must be one of {', '.join(UNWRAPPED_DELIVERY)}")

        for net in self.notify_to_networks:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"notify_to_networks: {net!r} is not a CIDR network") from None

    def signature_required(self, realms: tuple[str, ...] = ()) -> bool:
        """Server-wide, or for a caller in any realm that requires signatures."""
        per_realm = dict(self.require_signature_realms)
        return self.require_signature or any(per_realm.get(r, False) for r in realms)

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> SecuritySettings:
        known = {f.name: f.type for f in fields(cls)}
        unknown = set(values) - set(known)
        if unknown:
            raise ValueError(f"unknown security settings: {', '.join(sorted(unknown))}")
        values = dict(values)
        realms = values.get("require_signature_realms")
        if isinstance(realms, dict):
            values["require_signature_realms"] = tuple(sorted(
                (str(k), bool(v)) for k, v in realms.items()))
        for name in ("signature_algorithms", "digest_algorithms", "notify_to_networks"):
            if name in values:
                values[name] = tuple(values[name])
        return replace(cls(), **values)
