"""The records the service and the store exchange besides the model's objects: what a
page of updates is drawn from, subscriptions and their pending notifications, the
PushAuditMessage quota. Pure data; the ports (service/ports.py) speak in them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

# Key selectors a SelectorFilter may test for equality (GetUpdateList, Enumerate).
KEY_SELECTORS = ("KeyId", "FriendlyName", "State", "PepId", "CipherType", "TemplateId")


class WriteNeeded(Exception):
    """A read-only unit of work tried to write: run it again as a write transaction."""


@dataclass(frozen=True)
class KeyScope:
    realms: tuple[str, ...]
    pep_id: str | None = None
    equals: tuple[tuple[str, str], ...] = ()  # (selector name, value), ANDed


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    endpoint_id: str
    notify_to: str
    mode: str
    update_type: str
    pep_id: str | None
    expires: datetime
    origin: str | None = None  # the address the subscription came from
    end_to: str | None = None  # wse:EndTo: where SubscriptionEnd goes (None: not sent)
    realms: tuple[str, ...] = ()  # where the subscriber had the Read right at Subscribe


@dataclass(frozen=True)
class Pending:
    subscription: Subscription
    token: int
    attempts: int
    failing_since: datetime | None = None


@dataclass(frozen=True)
class SubscriptionEnd:
    """A WS-Eventing SubscriptionEnd waiting to be sent to a subscription's EndTo:
    queued `at` (delivery gives up notify_give_up_seconds after), tried `attempts` times."""

    end_id: int
    subscription_id: str
    end_to: str
    origin: str | None
    status: str
    reason: str
    at: datetime | None = None
    attempts: int = 0


@dataclass(frozen=True)
class QuotaUse:
    window_start: datetime
    messages: int
    bytes: int
    refused: int


class ChainHead(NamedTuple):
    """The audit chain's head row (store.audit_log, audit.chain)."""

    started_after: int  # records with an id up to this are older than the chain
    master_key_id: str | None  # the master key sealing the chain's key
    seq: int  # the last record's place (0: none yet)
    mac: str | None  # its MAC (hex)
    tag: str | None = None  # HMAC of (started_after, seq, mac) under the chain key (hex)
    # None until the first record (the migration has no key); not read when linking
    sealed_key: bytes | None = None
    started_at: datetime | None = None


# Keys a page holds: their change_seq range [lo, hi] (a superset is harmless: results are
# looked up by key id), or their ids.
KeySelection = tuple[int, int] | Sequence[str]
