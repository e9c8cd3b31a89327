"""The one frozen security-settings dataclass, with safe defaults."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class SecuritySettings:
    # Message limits, enforced before authentication.
    max_message_bytes: int = 512 * 1024
    max_xml_depth: int = 32
    max_xml_elements: int = 20_000
    # Credentials.
    session_ttl_seconds: int = 3600
    lock_after_failed_authentications: int = 10
    password_cache_seconds: int = 300
    # HTTP Basic over plain HTTP (no TLS): allowed for local use by default; a server
    # that listens beyond loopback without TLS should turn it off.
    allow_basic_over_http: bool = True
    # GetRandomBytes upper bound per request (bytes).
    max_random_bytes: int = 65536
    # Realm given to clients and keys that name none.
    default_realm: str = "realm://localhost/default"

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> "SecuritySettings":
        known = {f.name: f.type for f in fields(cls)}
        unknown = set(values) - set(known)
        if unknown:
            raise ValueError(f"unknown security settings: {', '.join(sorted(unknown))}")
        return replace(cls(), **values)
