"""Requests and results of the administrative operations (one set for every kind).

An object travels as a document: a dict keyed by its schema element's child names
(the spec's attribute names in CamelCase), values as text, lists for repeated
elements. The SOAP layer and, later, WS-Transfer translate XML to and from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..messages import Credential

Document = dict[str, Any]


@dataclass(frozen=True)
class Ref:
    kind: str  # a schema element name: Key, Realm, RetentionPolicy, ...
    object_id: str  # SO_GUID, or a realm URI / friendly name resolved by the kind


@dataclass(frozen=True)
class AdminRequest:
    action: str  # Create | Get | List | Edit | Delete | Associate | Disassociate
    kind: str
    object_id: str | None = None
    document: Document | None = None
    target: Ref | None = None
    rights: tuple[str, ...] = ()
    version: int | None = None
    altered_since: datetime | None = None
    max_items: int = 100
    credential: Credential | None = field(default=None, repr=False)


@dataclass(frozen=True)
class AdminResult:
    kind: str
    documents: tuple[Document, ...] = ()
    more: bool = False
    removed: bool = False  # Delete removed the object (else `documents` shows its tombstone)


@dataclass(frozen=True)
class AuditQuery:
    key_id: str | None = None
    actor_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    max_records: int = 100


@dataclass(frozen=True)
class AuditQueryResult:
    records: tuple[dict[str, Any], ...]
