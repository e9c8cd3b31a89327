"""Stateless WS-Enumeration contexts: a cursor (keyset position on the store-wide change
sequence, the snapshot's upper bound, the filter, the caller, the expiry) serialised and
MACed with HMAC-SHA256 under a key derived from the master key. Any worker or node that
shares the master key can answer Pull; nothing is kept when a client walks away."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime

from ..domain.errors import InvalidEnumerationContext

VERSION = 1


@dataclass(frozen=True)
class Cursor:
    pos: int  # last change_seq delivered
    high: int  # change_seq bound of the snapshot: the new token when the end is reached
    caller: str  # endpoint id the context belongs to
    expires: int  # unix seconds
    filter: tuple[tuple[str, str], ...]  # (name, value) pairs; see service.update_list
    mode: str = ""  # "" (objects), EnumerateEPR, EnumerateObjectAndEPR

    def advanced(self, pos: int) -> Cursor:
        return replace(self, pos=pos)


_FIELDS = tuple(f.name for f in fields(Cursor))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(cursor: Cursor, mac_key: bytes) -> str:
    doc = {f: getattr(cursor, f) for f in _FIELDS}  # asdict would deep-copy the filter
    doc["v"] = VERSION
    payload = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")
    tag = hmac.new(mac_key, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(tag)}"


def open_context(text: str, mac_key: bytes, caller: str, now: datetime) -> Cursor:
    """The cursor a context carries, or InvalidEnumerationContext when it was not made by
    us, was changed, belongs to someone else or has expired (one reason for all of them
    on the wire: a context is not an oracle)."""
    bad = InvalidEnumerationContext("the enumeration context is invalid or has expired")
    try:
        p, _, t = text.strip().partition(".")
        payload, tag = _unb64(p), _unb64(t)
    except (binascii.Error, ValueError):
        raise bad from None
    if not hmac.compare_digest(tag, hmac.new(mac_key, payload, hashlib.sha256).digest()):
        raise bad
    doc = json.loads(payload)
    if doc.pop("v", None) != VERSION:
        raise bad
    doc["filter"] = tuple(tuple(x) for x in doc["filter"])
    cursor = Cursor(**doc)
    if cursor.caller != caller or cursor.expires <= now.replace(tzinfo=UTC).timestamp():
        raise bad
    return cursor
