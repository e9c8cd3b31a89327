"""The store's ports (kms_ws.service.ports) in memory, for handler tests.

`MemoryStore` hands out units of work over plain Python tables (`Tables`: dicts and
lists). A unit of work works on its own deep copy of the tables and puts it in place when
it ends without an exception; an exception discards it — a transaction's all or nothing.
Two writers never overlap (the SQL store's write lock): a write unit of work that would
commit over another's commit fails loudly. `read_only=True` raises
`domain.records.WriteNeeded` on any write; audit records are appended (no MAC: the fake is
not the chain) only in a write unit of work of a store with an audit signer, as in
store/audit_log.py. Every insert or update of a key, template, object or endpoint, and
every removal, takes the next place on the change sequence.

One class per port, like store/: each reads store/<module>.py's semantics. Not modelled:
column bounds (store.bounds) other than the audit record's cut, and caching.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from kms_ws.domain.backoff import Strikes
from kms_ws.domain.lifecycle import next_transition
from kms_ws.domain.model import (
    AdminObject,
    ClientState,
    CredentialType,
    DataSet,
    Endpoint,
    EndpointKind,
    Key,
    KeyState,
    KeyTemplate,
    NameValue,
    Removal,
)
from kms_ws.domain.realms import Right
from kms_ws.domain.records import (
    ChainHead,
    KeyScope,
    KeySelection,
    Pending,
    QuotaUse,
    Subscription,
    SubscriptionEnd,
    WriteNeeded,
)
from kms_ws.domain.wrapping import WrappingKeyInfo
from kms_ws.service.ports import Store, UnitOfWork
from kms_ws.store import tables as t
from kms_ws.store.audit_log import CONTENT, OPTIONAL_CONTENT, AuditChainMissing, AuditRecords
from kms_ws.store.bounds import fit
from kms_ws.store.part import MASTER_KEY_CURRENT


class ConstraintViolation(Exception):
    """What the SQL store's unique and foreign-key constraints would refuse."""


class CredentialRow(NamedTuple):
    endpoint_id: str
    credential_type: str
    certificate: bytes | None
    cert_sha256: str | None
    sealed_secret: bytes | None
    master_key_id: str | None


@dataclass(frozen=True)
class TallyRow:
    """A refusal tally (the SQL row: its `count` column is not a tuple's count)."""

    source: str
    reason: str
    started_at: datetime
    operation: str
    count: int
    last_at: datetime
    detail: str


@dataclass
class KeyRow:
    key: Key  # metadata only: value, data sets and delivery fields are not kept here
    sealed: bytes | None
    master_key_id: str | None
    change_seq: int
    next_transition_at: datetime | None = None


@dataclass
class EndpointRow:
    endpoint: Endpoint  # its grants, capabilities, attributes and KM-server flag too
    created_at: datetime
    edit_datetime: datetime
    change_seq: int


@dataclass
class SessionRow:
    endpoint_id: str
    expires_at: datetime
    revoked: bool = False


@dataclass
class WrappingRow:
    info: WrappingKeyInfo
    sealed: bytes | None
    master_key_id: str | None
    certificate: bytes | None


@dataclass
class ObjectRow:
    obj: AdminObject  # realms are kept in `realms`
    change_seq: int
    realms: set[str] = field(default_factory=set)


@dataclass
class TemplateRow:
    template: KeyTemplate  # realms are kept in `realms`
    change_seq: int
    realms: set[str] = field(default_factory=set)


class RemovalRow(NamedTuple):
    seq: int
    removal: Removal
    left: frozenset[str]
    kept: frozenset[str] = frozenset()
    reader: str | None = None


@dataclass
class PendingRow:
    token: int
    attempts: int
    next_attempt_at: datetime
    failing_since: datetime | None = None


@dataclass
class Tables:
    """Everything a store holds."""

    seq: int = 0  # the change sequence's last place
    changes: list[tuple[int, str, str, int, datetime]] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    keys: dict[str, KeyRow] = field(default_factory=dict)
    key_use: dict[tuple[str, str], tuple[str, datetime]] = field(default_factory=dict)
    bindings: list[dict[str, Any]] = field(default_factory=list)
    endpoints: dict[str, EndpointRow] = field(default_factory=dict)
    credentials: dict[str, CredentialRow] = field(default_factory=dict)
    identities: dict[str, tuple[NameValue, ...]] = field(default_factory=dict)
    sessions: dict[str, SessionRow] = field(default_factory=dict)
    wrapping: dict[tuple[str, str], WrappingRow] = field(default_factory=dict)
    objects: dict[tuple[str, str], ObjectRow] = field(default_factory=dict)
    associations: set[tuple[str, str, str, str]] = field(default_factory=set)
    templates: dict[str, TemplateRow] = field(default_factory=dict)
    # (place, removal, realms left, realms kept, the one reader it is for)
    removals: list[RemovalRow] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    quotas: dict[str, QuotaUse] = field(default_factory=dict)
    seen: dict[tuple[str, str], datetime] = field(default_factory=dict)
    strikes: dict[str, Strikes] = field(default_factory=dict)
    tallies: dict[tuple[str, str, datetime], TallyRow] = field(default_factory=dict)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    pending: dict[str, PendingRow] = field(default_factory=dict)
    ends: list[SubscriptionEnd] = field(default_factory=list)
    end_retry_at: dict[int, datetime] = field(default_factory=dict)
    next_end_id: int = 1


class Part:
    """One repository of one unit of work: its tables and whether it may write."""

    def __init__(self, unit: MemoryUnitOfWork) -> None:
        self.unit = unit

    @property
    def t(self) -> Tables:
        return self.unit.tables

    def _writing(self) -> None:
        if self.unit.read_only:
            raise WriteNeeded()

    def _next_change(self, kind: str, object_id: str, version: int, now: datetime) -> int:
        self._writing()
        self.t.seq += 1
        self.t.changes.append((self.t.seq, kind, object_id, version, now))
        return self.t.seq


_PRUNED_THROUGH = "removals_pruned_through"


def _meets(realms: Iterable[str], wanted: Iterable[str]) -> bool:
    return not set(realms).isdisjoint(wanted)


# Key selectors (domain.records.KEY_SELECTORS) as Key fields.
_KEY_SELECTOR_FIELDS = {"KeyId": "key_id", "FriendlyName": "friendly_name", "State": "state",
                        "PepId": "pep_id", "CipherType": "cipher_type",
                        "TemplateId": "template_id"}


def _selector_value(key: Key, selector: str) -> str | None:
    value = getattr(key, _KEY_SELECTOR_FIELDS[selector])
    if value is None:
        return None
    return str(value.value) if isinstance(value, KeyState) else str(value)


class MemoryKeys(Part):
    """service.ports.Keys (store/keys.py)."""

    def insert_key(self, key: Key, sealed: bytes, master_key_id: str, reported_by: str | None,
                   now: datetime) -> int:
        seq = self._next_change("key", key.key_id, key.version, now)
        if key.key_id in self.t.keys:
            raise ConstraintViolation(f"key {key.key_id} exists")
        self.t.keys[key.key_id] = KeyRow(_metadata(key), sealed, master_key_id, seq,
                                         next_transition(key, now))
        self.add_bindings(key.key_id, key.datasets, reported_by, now)
        return seq

    def add_bindings(self, key_id: str, datasets: Iterable[DataSet], reported_by: str | None,
                     now: datetime) -> None:
        for d in datasets:
            self._writing()
            self.t.bindings.append({"key_id": key_id, "name": d.name, "value": d.value,
                                    "sizeof_value": d.sizeof_value,
                                    "reported_by": reported_by, "at": now})

    def get_key(self, key_id: str) -> tuple[Key, bytes | None, str | None] | None:
        row = self.t.keys.get(key_id)
        if row is None:
            return None
        return self.read(row), row.sealed, row.master_key_id

    def read(self, row: KeyRow) -> Key:
        """The key as the store reads it: realms, attributes sorted; data sets from its
        bindings (one per name and value, the largest size)."""
        found: dict[tuple[str, str], int | None] = {}
        for b in self.t.bindings:
            if b["key_id"] == row.key.key_id:
                size = found.get((b["name"], b["value"]))
                found[(b["name"], b["value"])] = max(
                    (s for s in (size, b["sizeof_value"]) if s is not None), default=None)
        datasets = tuple(DataSet(n, v, s) for (n, v), s in sorted(found.items()))
        return dataclasses.replace(copy.deepcopy(row.key), datasets=datasets)

    def find_key_ids(self, realms: Sequence[str], *, limit: int,
                     friendly_name: str | None = None, attributes: Sequence[NameValue] = (),
                     datasets: Sequence[DataSet] = (), template_id: str | None = None,
                     altered_since: datetime | None = None,
                     order: str = "created") -> list[str]:
        found = []
        for row in self.t.keys.values():
            k = row.key
            if not _meets(k.realms, realms):
                continue
            if friendly_name is not None and k.friendly_name != friendly_name:
                continue
            if template_id is not None and k.template_id != template_id:
                continue
            if altered_since is not None and not k.edit_datetime > altered_since:
                continue
            if any(a not in k.attributes for a in attributes):
                continue
            if any(not self.has_binding(k.key_id, d) for d in datasets):
                continue
            found.append(k)
        if order == "newest":
            found.sort(key=lambda k: (k.created_at, k.key_id), reverse=True)
        else:
            found.sort(key=lambda k: (k.edit_datetime if order == "edited" else k.created_at,
                                      k.key_id))
        return [k.key_id for k in found[:limit]]

    def record_use(self, key_id: str, endpoint_id: str, endpoint_kind: str,
                   now: datetime) -> None:
        self._writing()
        self.t.key_use.setdefault((key_id, endpoint_id), (endpoint_kind, now))

    def use_by(self, key_id: str) -> list[tuple[str, str]]:
        rows = sorted((at, eid, kind) for (kid, eid), (kind, at) in self.t.key_use.items()
                      if kid == key_id)
        return [(kind, eid) for _, eid, kind in rows]

    def bindings(self, realms: Sequence[str], *, key_id: str | None = None,
                 dataset: DataSet | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        rows = [{k: b[k] for k in ("key_id", "name", "value", "reported_by", "at")}
                for b in reversed(self.t.bindings)  # newest first (appended in time order)
                if _meets(self.t.keys[b["key_id"]].key.realms, realms)
                and (key_id is None or b["key_id"] == key_id)
                and (dataset is None or (b["name"], b["value"]) == (dataset.name, dataset.value))]
        rows.sort(key=lambda b: b["at"], reverse=True)  # stable: same time, later row first
        return rows[:limit]

    def has_binding(self, key_id: str, dataset: DataSet) -> bool:
        return any(b["key_id"] == key_id and (b["name"], b["value"]) == (dataset.name,
                                                                          dataset.value)
                   for b in self.t.bindings)

    def key_ids_of_template(self, template_id: str) -> list[str]:
        return sorted(k for k, row in self.t.keys.items() if row.key.template_id == template_id)

    def update_key(self, key: Key, sealed: bytes | None, erase: bool = False,
                   master_key_id: str | None = None) -> int:
        seq = self._next_change("key", key.key_id, key.version, key.edit_datetime)
        row = self.t.keys[key.key_id]
        old = row.key
        # state, dates, names, version, attributes and extensions; realms stay
        row.key = dataclasses.replace(_metadata(key), realms=old.realms,
                                      created_at=old.created_at, source_kind=old.source_kind,
                                      source_id=old.source_id, template_id=old.template_id,
                                      pep_id=old.pep_id, cipher_type=old.cipher_type,
                                      length_bits=old.length_bits, t_cached=old.t_cached)
        row.change_seq = seq
        row.next_transition_at = next_transition(key, key.edit_datetime)
        if sealed is not None or erase:
            row.sealed = sealed
            row.master_key_id = master_key_id if sealed is not None else None
        return seq

    def set_key_realms(self, key_id: str, realms: Sequence[str], version: int,
                       now: datetime) -> int:
        self._writing()
        row = self.t.keys[key_id]
        row.key = dataclasses.replace(row.key, realms=tuple(sorted(set(realms))))
        row.change_seq = self._next_change("key", key_id, version, now)
        return row.change_seq

    def due_transitions(self, now: datetime, limit: int = 100) -> list[tuple[str, datetime]]:
        due = sorted((row.next_transition_at, kid) for kid, row in self.t.keys.items()
                     if row.next_transition_at is not None and row.next_transition_at <= now)
        return [(kid, at) for at, kid in due[:limit]]

    def claim_transition(self, key_id: str, due: datetime, following: datetime | None,
                         version: int, now: datetime) -> int | None:
        self._writing()
        row = self.t.keys.get(key_id)
        if row is None or row.next_transition_at != due:
            return None
        row.next_transition_at = following
        row.change_seq = self._next_change("key", key_id, version, now)
        return row.change_seq

    def list_key_ids(self, realms: Sequence[str], *, limit: int,
                     altered_since: datetime | None = None) -> list[str]:
        rows = sorted((row.change_seq, kid) for kid, row in self.t.keys.items()
                      if _meets(row.key.realms, realms)
                      and (altered_since is None or row.key.edit_datetime > altered_since))
        return [kid for _, kid in rows[:limit]]

    def count_by_state(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.t.keys.values():
            counts[row.key.state.value] = counts.get(row.key.state.value, 0) + 1
        return counts



def _metadata(key: Key) -> Key:
    """What the keys table keeps of a key."""
    return dataclasses.replace(
        copy.deepcopy(key), value=None, blob=None, hidden=False, datasets=(),
        assignment_policy_id=None, assignment_scope=None,
        realms=tuple(sorted(set(key.realms))),
        attributes=tuple(sorted(key.attributes, key=lambda a: a.name)))


class MemoryEndpoints(Part):
    """service.ports.Endpoints (store/endpoints.py)."""

    def insert_endpoint(self, ep: Endpoint, now: datetime) -> None:
        if self.endpoint_name_taken(ep.kind, ep.name):
            raise ConstraintViolation(f"a {ep.kind.value} named {ep.name} exists")
        seq = self._next_change("endpoint", ep.endpoint_id, ep.version, now)
        stored = copy.deepcopy(ep)
        stored.failed_auth, stored.locked_at = 0, None
        self.t.endpoints[ep.endpoint_id] = EndpointRow(stored, now, now, seq)

    def endpoint_name_taken(self, kind: EndpointKind, name: str) -> bool:
        return any(r.endpoint.kind is kind and r.endpoint.name == name
                   for r in self.t.endpoints.values())

    def _endpoint(self, row: EndpointRow) -> Endpoint:
        ep = row.endpoint
        return dataclasses.replace(
            copy.deepcopy(ep), grants=dict(ep.grants), realms=(),
            capabilities=tuple(sorted(ep.capabilities)),
            attributes=tuple(sorted(ep.attributes, key=lambda a: a.name)))

    def get_endpoint(self, endpoint_id: str) -> Endpoint | None:
        row = self.t.endpoints.get(endpoint_id)
        return self._endpoint(row) if row else None

    def grants_in(self, endpoint_ids: Collection[str],
                  realms: Sequence[str]) -> dict[str, dict[str, frozenset[Right]]]:
        out: dict[str, dict[str, frozenset[Right]]] = {}
        for eid in endpoint_ids:
            row = self.t.endpoints.get(eid)
            grants = {r: rights for r, rights in row.endpoint.grants.items()
                      if r in realms} if row is not None else {}
            if grants:
                out[eid] = grants
        return out

    def find_client(self, name: str) -> Endpoint | None:
        return next((self._endpoint(r) for r in self.t.endpoints.values()
                     if r.endpoint.kind is EndpointKind.CLIENT and r.endpoint.name == name),
                    None)

    def list_clients(self) -> list[Endpoint]:
        rows = sorted(self.t.endpoints.values(),
                      key=lambda r: (r.endpoint.kind.value, r.endpoint.name))
        return [self._endpoint(r) for r in rows]

    def record_auth_failure(self, endpoint_id: str, lock_after: int, now: datetime) -> bool:
        self._writing()
        ep = self.t.endpoints[endpoint_id].endpoint
        ep.failed_auth += 1
        if not lock_after or ep.failed_auth < lock_after:
            return False
        if ep.state not in (ClientState.ACTIVE, ClientState.LOCKED):
            return False
        ep.state, ep.locked_at = ClientState.LOCKED, now
        return True

    def set_grants(self, endpoint_id: str, grants: dict[str, frozenset[Right]]) -> None:
        self._writing()
        ep = self.t.endpoints[endpoint_id].endpoint
        if set(grants) & set(ep.grants):
            raise ConstraintViolation("a realm granted twice")
        ep.grants.update(grants)

    def reset_auth_failures(self, endpoint_id: str, locked_before: datetime | None) -> None:
        self._writing()
        ep = self.t.endpoints[endpoint_id].endpoint
        if ep.state is not ClientState.LOCKED:
            ep.failed_auth = 0
        elif locked_before is not None and ep.locked_at is not None \
                and ep.locked_at < locked_before:
            ep.state, ep.failed_auth, ep.locked_at = ClientState.ACTIVE, 0, None

    def unlock(self, endpoint_id: str) -> bool:
        self._writing()
        row = self.t.endpoints.get(endpoint_id)
        if row is None or row.endpoint.state is not ClientState.LOCKED:
            return False
        ep = row.endpoint
        ep.state, ep.failed_auth, ep.locked_at = ClientState.ACTIVE, 0, None
        return True

    def find_endpoints(self, name: str) -> list[Endpoint]:
        return [self._endpoint(r) for r in self.t.endpoints.values() if r.endpoint.name == name]

    def insert_endpoint_credential(self, endpoint_id: str, credential_type: CredentialType, *,
                                   certificate: bytes | None = None,
                                   cert_sha256: str | None = None,
                                   sealed_secret: bytes | None = None,
                                   master_key_id: str | None = None) -> None:
        self._writing()
        if endpoint_id in self.t.credentials or (
                cert_sha256 is not None and self.certificate_taken(cert_sha256)):
            raise ConstraintViolation("credential exists")
        self.t.credentials[endpoint_id] = CredentialRow(
            endpoint_id, credential_type.value, certificate, cert_sha256, sealed_secret,
            master_key_id)

    def delete_endpoint_credential(self, endpoint_id: str) -> bool:
        self._writing()
        return self.t.credentials.pop(endpoint_id, None) is not None

    def certificate_taken(self, cert_sha256: str) -> bool:
        return any(c.cert_sha256 == cert_sha256 for c in self.t.credentials.values())

    def endpoint_credential(self, endpoint_id: str | None = None,
                            cert_sha256: str | None = None) -> Any:
        if endpoint_id is not None:
            return self.t.credentials.get(endpoint_id)
        return next((c for c in self.t.credentials.values() if c.cert_sha256 == cert_sha256),
                    None)

    def insert_session(self, token_hash: str, endpoint_id: str, now: datetime,
                       expires: datetime) -> None:
        self._writing()
        self.t.sessions[token_hash] = SessionRow(endpoint_id, expires)

    def session_endpoint(self, token_hash: str, now: datetime) -> tuple[str, datetime] | None:
        s = self.t.sessions.get(token_hash)
        if s is None or s.revoked or not s.expires_at > now:
            return None
        return s.endpoint_id, s.expires_at

    def revoke_session(self, token_hash: str) -> None:
        self._writing()
        if token_hash in self.t.sessions:
            self.t.sessions[token_hash].revoked = True

    def insert_wrapping_key(self, info: WrappingKeyInfo, sealed: bytes | None,
                            master_key_id: str | None, certificate: bytes | None) -> None:
        self._writing()
        if (info.endpoint_id, info.key_id) in self.t.wrapping:
            raise ConstraintViolation(f"wrapping key {info.key_id} exists")
        self.t.wrapping[(info.endpoint_id, info.key_id)] = WrappingRow(
            info, sealed, master_key_id, certificate)

    def next_wrapping_ordinal(self, endpoint_id: str) -> int:
        return max((r.info.ordinal for (eid, _), r in self.t.wrapping.items()
                    if eid == endpoint_id), default=0) + 1

    def wrapping_keys(self, endpoint_id: str) -> list[WrappingKeyInfo]:
        return sorted((r.info for (eid, _), r in self.t.wrapping.items() if eid == endpoint_id),
                      key=lambda i: i.ordinal)

    def wrapping_key_material(self, endpoint_id: str,
                              key_id: str) -> tuple[bytes | None, str | None, bytes | None]:
        r = self.t.wrapping[(endpoint_id, key_id)]
        return r.sealed, r.master_key_id, r.certificate

    def delete_wrapping_keys(self, endpoint_id: str, key_ids: Sequence[str]) -> int:
        self._writing()
        gone = [k for k in key_ids if self.t.wrapping.pop((endpoint_id, k), None) is not None]
        return len(gone)

    def grant(self, endpoint_id: str, realm: str, rights: frozenset[Right]) -> None:
        self._writing()
        self.t.endpoints[endpoint_id].endpoint.grants[realm] = rights

    def revoke(self, endpoint_id: str, realm: str) -> bool:
        self._writing()
        return self.t.endpoints[endpoint_id].endpoint.grants.pop(realm, None) is not None

    def realm_users(self, realm: str, except_endpoint: str | None = None) -> str:
        counts = (
            ("endpoint grants", sum(realm in r.endpoint.grants for eid, r in
                                    self.t.endpoints.items() if eid != except_endpoint)),
            ("objects", sum(realm in r.realms for (kind, _), r in self.t.objects.items()
                            if kind != "Realm")),
            ("keys", sum(realm in r.key.realms for r in self.t.keys.values())),
            ("templates", sum(realm in r.realms for r in self.t.templates.values())))
        return ", ".join(f"{n} {label}" for label, n in counts if n)

    def set_password_hash(self, endpoint_id: str, password_hash: str | None) -> None:
        self._writing()
        self.t.endpoints[endpoint_id].endpoint.password_hash = password_hash

    def has_open_session(self, endpoint_id: str, now: datetime) -> bool:
        return any(s.endpoint_id == endpoint_id and not s.revoked and s.expires_at > now
                   for s in self.t.sessions.values())

    def revoke_sessions_of(self, endpoint_id: str) -> None:
        self._writing()
        for s in self.t.sessions.values():
            if s.endpoint_id == endpoint_id:
                s.revoked = True

    def set_km_server(self, endpoint_id: str, flag: bool) -> None:
        self._writing()
        self.t.endpoints[endpoint_id].endpoint.is_km_server = flag

    def update_endpoint(self, ep: Endpoint, now: datetime) -> None:
        seq = self._next_change("endpoint", ep.endpoint_id, ep.version, now)
        row = self.t.endpoints[ep.endpoint_id]
        kept = row.endpoint  # name, kind, owner, password and grants are not written here
        row.endpoint = dataclasses.replace(
            copy.deepcopy(ep), name=kept.name, kind=kept.kind, owner_id=kept.owner_id,
            password_hash=kept.password_hash, grants=dict(kept.grants), realms=())
        row.edit_datetime, row.change_seq = now, seq

    def list_endpoints(self, kind: str, realms: Sequence[str], limit: int,
                       altered_since: datetime | None = None) -> list[Endpoint]:
        rows = sorted((r for r in self.t.endpoints.values()
                       if r.endpoint.kind.value == kind and _meets(r.endpoint.grants, realms)
                       and (altered_since is None or r.edit_datetime > altered_since)),
                      key=lambda r: r.endpoint.name)
        return [self._endpoint(r) for r in rows[:limit]]

    def set_cim_identity(self, endpoint_id: str, identity: Sequence[NameValue]) -> None:
        self._writing()
        self.t.identities[endpoint_id] = tuple(identity)

    def cim_identity(self, endpoint_id: str) -> tuple[NameValue, ...]:
        return tuple(sorted(self.t.identities.get(endpoint_id, ()), key=lambda p: p.name))

    def delete_endpoint(self, endpoint_id: str) -> None:
        """With what cascades from it: credentials, sessions, wrapping keys,
        subscriptions and their pending notifications."""
        self._writing()
        if any(r.key.pep_id == endpoint_id for r in self.t.keys.values()):
            raise ConstraintViolation("keys refer to the endpoint")
        self.t.endpoints.pop(endpoint_id, None)
        self.t.credentials.pop(endpoint_id, None)
        self.t.identities.pop(endpoint_id, None)
        for token in [h for h, s in self.t.sessions.items() if s.endpoint_id == endpoint_id]:
            del self.t.sessions[token]
        for pair in [p for p in self.t.wrapping if p[0] == endpoint_id]:
            del self.t.wrapping[pair]
        for row in self.t.wrapping.values():  # ON DELETE SET NULL: the registrant is gone
            if row.info.registered_by == endpoint_id:
                row.info = dataclasses.replace(row.info, registered_by=None)
        for sid in [s.subscription_id for s in self.t.subscriptions.values()
                    if s.endpoint_id == endpoint_id]:
            del self.t.subscriptions[sid]
            self.t.pending.pop(sid, None)

    def count_endpoints_of_type(self, type_id: str) -> int:
        return sum(r.endpoint.endpoint_type_id == type_id for r in self.t.endpoints.values())

    def peps_of(self, owner_id: str) -> list[str]:
        return [eid for eid, r in self.t.endpoints.items() if r.endpoint.owner_id == owner_id]

    def endpoint_users(self, endpoint_id: str) -> str:
        peps = len(self.peps_of(endpoint_id))
        keys = sum(r.key.pep_id == endpoint_id for r in self.t.keys.values())
        return ", ".join(f"{n} {label}" for n, label in ((peps, "PEPs"), (keys, "keys")) if n)


def _json(body: dict[str, Any]) -> dict[str, Any]:
    """An object's body as the store keeps it (JSON: what does not serialize fails)."""
    out: dict[str, Any] = json.loads(json.dumps(body))
    return out


class MemoryObjects(Part):
    """service.ports.Objects (store/objects.py)."""

    def insert_object(self, obj: AdminObject) -> int:
        if obj.name is not None and self.find_object(obj.kind, obj.name) is not None:
            raise ConstraintViolation(f"a {obj.kind} named {obj.name} exists")
        seq = self._next_change(obj.kind, obj.object_id, obj.version, obj.edit_datetime)
        stored = dataclasses.replace(obj, body=_json(obj.body), realms=())
        self.t.objects[(obj.kind, obj.object_id)] = ObjectRow(stored, seq, set(obj.realms))
        return seq

    def update_object(self, obj: AdminObject) -> int:
        seq = self._next_change(obj.kind, obj.object_id, obj.version, obj.edit_datetime)
        row = self.t.objects[(obj.kind, obj.object_id)]
        row.obj = dataclasses.replace(row.obj, name=obj.name, state=obj.state,
                                      version=obj.version, edit_datetime=obj.edit_datetime,
                                      body=_json(obj.body))
        row.change_seq = seq
        return seq

    def delete_object(self, kind: str, object_id: str) -> None:
        self._writing()
        self.t.objects.pop((kind, object_id), None)
        self.drop_associations(kind, object_id)

    def _object(self, row: ObjectRow) -> AdminObject:
        return dataclasses.replace(copy.deepcopy(row.obj), realms=tuple(sorted(row.realms)))

    def get_object(self, kind: str, object_id: str) -> AdminObject | None:
        row = self.t.objects.get((kind, object_id))
        return self._object(row) if row else None

    def find_object(self, kind: str, name: str) -> AdminObject | None:
        return next((self._object(r) for (k, _), r in self.t.objects.items()
                     if k == kind and r.obj.name == name), None)

    def list_objects(self, kind: str, realms: Sequence[str] | None, *, limit: int,
                     altered_since: datetime | None = None,
                     states: Sequence[str] = ()) -> list[AdminObject]:
        rows = sorted((r for (k, _), r in self.t.objects.items()
                       if k == kind and (realms is None or _meets(r.realms, realms))
                       and (altered_since is None or r.obj.edit_datetime > altered_since)
                       and (not states or r.obj.state in states)),
                      key=lambda r: (r.change_seq, r.obj.object_id))
        return [self._object(r) for r in rows[:limit]]

    def _changed(self, kinds: Sequence[str], realms: Sequence[str], pos: int,
                 high: int) -> list[ObjectRow]:
        return sorted((r for (k, _), r in self.t.objects.items()
                       if k in kinds and pos < r.change_seq <= high and _meets(r.realms, realms)),
                      key=lambda r: r.change_seq)

    def object_page(self, kinds: Sequence[str], realms: Sequence[str], pos: int, high: int,
                    limit: int) -> list[tuple[int, AdminObject]]:
        return [(r.change_seq, self._object(r))
                for r in self._changed(kinds, realms, pos, high)[:limit]]

    def count_objects(self, kinds: Sequence[str], realms: Sequence[str], pos: int,
                      high: int) -> int:
        return len(self._changed(kinds, realms, pos, high))

    def set_object_realms(self, kind: str, object_id: str, realms: Iterable[str]) -> None:
        self._writing()
        self.t.objects[(kind, object_id)].realms = set(realms)

    def associate(self, kind: str, object_id: str, target_kind: str, target_id: str) -> bool:
        if self.is_associated(kind, object_id, target_kind, target_id):
            return False
        self._writing()
        self.t.associations.add((kind, object_id, target_kind, target_id))
        return True

    def disassociate(self, kind: str, object_id: str, target_kind: str, target_id: str) -> bool:
        if not self.is_associated(kind, object_id, target_kind, target_id):
            return False
        self._writing()
        self.t.associations.discard((kind, object_id, target_kind, target_id))
        return True

    def is_associated(self, kind: str, object_id: str, target_kind: str, target_id: str) -> bool:
        return (kind, object_id, target_kind, target_id) in self.t.associations

    def targets_of(self, kind: str, object_id: str) -> list[tuple[str, str]]:
        return sorted((tk, tid) for k, i, tk, tid in self.t.associations
                      if (k, i) == (kind, object_id))

    def sources_of(self, target_kind: str, target_id: str,
                   kinds: Sequence[str] = ()) -> list[tuple[str, str]]:
        return sorted((k, i) for k, i, tk, tid in self.t.associations
                      if (tk, tid) == (target_kind, target_id) and (not kinds or k in kinds))

    def newest_assigned_key(self, policy_id: str) -> str | None:
        keys = [self.t.keys[tid].key for k, i, tk, tid in self.t.associations
                if (k, i, tk) == ("KeyAssignmentPolicy", policy_id, "Key") and tid in self.t.keys]
        if not keys:
            return None
        newest = max(k.created_at for k in keys)
        return min(k.key_id for k in keys if k.created_at == newest)

    def drop_associations(self, kind: str, object_id: str) -> None:
        self._writing()
        self.t.associations = {a for a in self.t.associations
                               if (a[0], a[1]) != (kind, object_id)
                               and (a[2], a[3]) != (kind, object_id)}

    def _enforcing(self, kind: str, object_id: str) -> ObjectRow | None:
        row = self.t.objects.get((kind, object_id))
        return row if row is not None and row.obj.state == "Enforcing" else None

    def enforcing_policies_for(self, targets: Sequence[tuple[str, str]]) -> list[
            tuple[AdminObject, str, str]]:
        found = [(row, tk, tid) for k, i, tk, tid in self.t.associations
                 if (tk, tid) in set(targets) and (row := self._enforcing(k, i)) is not None]
        found.sort(key=lambda f: (f[0].obj.kind, f[0].obj.object_id))
        return [(self._object(row), tk, tid) for row, tk, tid in found]

    def enforcing_targets(self, kind: str, target_kind: str) -> list[tuple[AdminObject, str]]:
        found = [(row, tid) for k, i, tk, tid in self.t.associations
                 if k == kind and tk == target_kind
                 and (row := self._enforcing(k, i)) is not None]
        found.sort(key=lambda f: f[1])
        return [(self._object(row), tid) for row, tid in found]

    def _selected(self, keys: KeySelection) -> tuple[set[str], set[str]]:
        """(key ids, their template ids)."""
        match keys:
            case (int(lo), int(hi)):  # a change_seq range
                ids = {kid for kid, r in self.t.keys.items() if lo <= r.change_seq <= hi}
            case _:
                ids = {str(k) for k in keys}
        templates = {r.key.template_id for kid, r in self.t.keys.items()
                     if kid in ids and r.key.template_id is not None}
        return ids, templates

    def policies_on_keys(self, kind: str, keys: KeySelection
                         ) -> list[tuple[str, dict[str, Any], str, str]]:
        ids, templates = self._selected(keys)
        return [(i, copy.deepcopy(row.obj.body), tk, tid)
                for k, i, tk, tid in sorted(self.t.associations)
                if k == kind and ((tk == "Key" and tid in ids)
                                  or (tk == "KeyTemplate" and tid in templates))
                and (row := self._enforcing(k, i)) is not None]

    def key_members_among(self, group_ids: Sequence[str],
                          keys: KeySelection) -> list[tuple[str, str]]:
        ids = self._selected(keys)[0]
        return [(i, tid) for k, i, tk, tid in sorted(self.t.associations)
                if k == "KeyGroup" and i in group_ids and tk == "Key" and tid in ids]

    def dynamic_groups(self, kind: str) -> list[AdminObject]:
        rows = sorted((r for (k, _), r in self.t.objects.items()
                       if k == kind and r.obj.body.get("Type") == "Dynamic"),
                      key=lambda r: r.obj.object_id)
        return [dataclasses.replace(copy.deepcopy(r.obj), realms=()) for r in rows]


class MemoryTemplates(Part):
    """service.ports.Templates (store/templates.py)."""

    def insert_template(self, tpl: KeyTemplate, now: datetime) -> int:
        if self.get_template(name=tpl.friendly_name) is not None:
            raise ConstraintViolation(f"a template named {tpl.friendly_name} exists")
        seq = self._next_change("template", tpl.template_id, tpl.version, now)
        stored = dataclasses.replace(tpl, edit_datetime=now, realms=())
        self.t.templates[tpl.template_id] = TemplateRow(stored, seq, set(tpl.realms))
        return seq

    def _template(self, row: TemplateRow) -> KeyTemplate:
        return dataclasses.replace(row.template, realms=tuple(sorted(row.realms)))

    def get_template(self, template_id: str | None = None,
                     name: str | None = None) -> KeyTemplate | None:
        if template_id is not None:
            row = self.t.templates.get(template_id)
        else:
            row = next((r for r in self.t.templates.values()
                        if r.template.friendly_name == name), None)
        return self._template(row) if row else None

    def update_template(self, tpl: KeyTemplate, now: datetime) -> int:
        seq = self._next_change("template", tpl.template_id, tpl.version, now)
        row = self.t.templates[tpl.template_id]
        row.template = dataclasses.replace(tpl, edit_datetime=now, realms=())
        row.change_seq = seq
        return seq

    def _changed(self, realms: Sequence[str], pos: int, high: int) -> list[TemplateRow]:
        return sorted((r for r in self.t.templates.values()
                       if pos < r.change_seq <= high and _meets(r.realms, realms)),
                      key=lambda r: r.change_seq)

    def template_page(self, realms: Sequence[str], pos: int, high: int,
                      limit: int) -> list[tuple[int, KeyTemplate]]:
        return [(r.change_seq, self._template(r)) for r in self._changed(realms, pos, high)[:limit]]

    def count_templates(self, realms: Sequence[str], pos: int, high: int) -> int:
        return len(self._changed(realms, pos, high))

    def set_template_realms(self, template_id: str, realms: Sequence[str]) -> None:
        self._writing()
        self.t.templates[template_id].realms = set(realms)

    def list_templates(self, realms: Sequence[str], limit: int,
                       altered_since: datetime | None = None) -> list[KeyTemplate]:
        rows = sorted((r for r in self.t.templates.values() if _meets(r.realms, realms)
                       and (altered_since is None or (r.template.edit_datetime is not None
                                                      and r.template.edit_datetime
                                                      > altered_since))),
                      key=lambda r: r.template.friendly_name)
        return [self._template(r) for r in rows[:limit]]

    def delete_template(self, template_id: str) -> None:
        self._writing()
        if self.key_ids_referring(template_id):
            raise ConstraintViolation("keys refer to the template")
        self.t.templates.pop(template_id, None)

    def key_ids_referring(self, template_id: str) -> list[str]:
        return [k for k, r in self.t.keys.items() if r.key.template_id == template_id]


class MemoryChanges(Part):
    """service.ports.Changes (store/changes.py)."""

    def record_removal(self, kind: str, object_id: str, version: int,
                       realms: Sequence[str], now: datetime,
                       kept: Sequence[str] = ()) -> int:
        seq = self._next_change(kind, object_id, version + 1, now)
        self.t.removals.append(RemovalRow(seq, Removal(kind, object_id, now),
                                          frozenset(realms) - set(kept), frozenset(kept)))
        return seq

    def record_lost_reads(self, endpoint_id: str, kinds: Sequence[str], lost: Sequence[str],
                          kept: Sequence[str], now: datetime) -> dict[str, int]:
        found: list[tuple[str, str, int]] = []
        if "Key" in kinds:
            found += sorted(("Key", r.key.key_id, r.key.version) for r in self.t.keys.values()
                            if _meets(r.key.realms, lost) and not _meets(r.key.realms, kept))
        if "KeyTemplate" in kinds:
            found += sorted(("KeyTemplate", tid, r.template.version)
                            for tid, r in self.t.templates.items()
                            if _meets(r.realms, lost) and not _meets(r.realms, kept))
        found += sorted((kind, oid, r.obj.version) for (kind, oid), r in self.t.objects.items()
                        if kind in kinds and kind not in ("Key", "KeyTemplate")
                        and _meets(r.realms, lost) and not _meets(r.realms, kept))
        last: dict[str, int] = {}
        for kind, oid, version in found:
            seq = self._next_change(kind, oid, version, now)
            self.t.removals.append(RemovalRow(seq, Removal(kind, oid, now), frozenset(),
                                              reader=endpoint_id))
            last[kind] = seq
        return last

    def _removed(self, kinds: Sequence[str], realms: Sequence[str], pos: int,
                 high: int, reader: str | None, pep_id: str | None) -> list[tuple[int, Removal]]:
        def seen(row: RemovalRow) -> bool:
            return (_meets(row.left, realms) and not _meets(row.kept, realms)) or \
                (reader is not None and row.reader == reader)

        def of_pep(row: RemovalRow) -> bool:
            key = self.t.keys.get(row.removal.object_id)
            return pep_id is None or (key is not None and key.key.pep_id == pep_id)
        return [(row.seq, row.removal) for row in self.t.removals
                if row.removal.kind in kinds and pos < row.seq <= high and seen(row)
                and of_pep(row)]

    def removal_page(self, kinds: Sequence[str], realms: Sequence[str], pos: int, high: int,
                     limit: int, reader: str | None = None,
                     pep_id: str | None = None) -> list[tuple[int, Removal]]:
        return self._removed(kinds, realms, pos, high, reader, pep_id)[:limit]

    def count_removals(self, kinds: Sequence[str], realms: Sequence[str], pos: int,
                       high: int, reader: str | None = None,
                       pep_id: str | None = None) -> int:
        return len(self._removed(kinds, realms, pos, high, reader, pep_id))

    def prune_removals(self, before: datetime, limit: int) -> int:
        self._writing()
        gone = sorted((row for row in self.t.removals if row.removal.removed_at < before),
                      key=lambda row: row.seq)[:limit]
        if not gone:
            return 0
        seqs = {row.seq for row in gone}
        self.t.removals = [row for row in self.t.removals if row.seq not in seqs]
        self.t.meta[_PRUNED_THROUGH] = str(max(max(seqs), self.removals_pruned_through()))
        return len(gone)

    def oldest_removal(self) -> datetime | None:
        first = min(self.t.removals, key=lambda row: row.seq, default=None)
        return first.removal.removed_at if first is not None else None

    def removals_pruned_through(self) -> int:
        return int(self.t.meta.get(_PRUNED_THROUGH, "0"))

    def high_water(self) -> int:
        return self.t.seq

    def _in_scope(self, scope: KeyScope, pos: int, high: int) -> list[KeyRow]:
        return sorted((r for r in self.t.keys.values()
                       if pos < r.change_seq <= high and _meets(r.key.realms, scope.realms)
                       and (scope.pep_id is None or r.key.pep_id == scope.pep_id
                            or self.t.key_use.get((r.key.key_id, scope.pep_id),
                                                  ("", None))[0] == "Pep")
                       and all(_selector_value(r.key, n) == v for n, v in scope.equals)),
                      key=lambda r: r.change_seq)

    def key_page(self, scope: KeyScope, pos: int, high: int,
                 limit: int) -> list[tuple[int, Key]]:
        keys = MemoryKeys(self.unit)
        return [(r.change_seq, keys.read(r)) for r in self._in_scope(scope, pos, high)[:limit]]

    def count_keys(self, scope: KeyScope, pos: int, high: int) -> int:
        return len(self._in_scope(scope, pos, high))


class MemoryAudit(AuditRecords, Part):
    """service.ports.AuditTrail (store/audit_log.py), without MACs."""

    def audit_query(self, *, key_id: str | None = None, actor_id: str | None = None,
                    since: datetime | None = None, until: datetime | None = None,
                    limit: int = 100) -> list[dict[str, Any]]:
        rows = [dict(r) for r in self.t.audit
                if (key_id is None or r["key_id"] == key_id)
                and (actor_id is None or r["actor_id"] == actor_id)
                and (since is None or r["at"] >= since) and (until is None or r["at"] < until)]
        rows.sort(key=lambda r: (r["at"], r["id"]))
        return rows[:limit]

    def append_audit(self, records: Sequence[dict[str, Any]]) -> None:
        if not records:
            return
        self._writing()
        if self.unit.store.audit is None:
            raise AuditChainMissing("audit records are chained: this unit of work's "
                                    "store has no audit signer")
        if not self.unit.write:
            raise AuditChainMissing("audit records are written in write units of work only "
                                    "(one writer of the chain at a time)")
        for record in records:
            row: dict[str, Any] = dict.fromkeys(CONTENT + OPTIONAL_CONTENT)
            row.update(fit(t.audit, record))
            row["id"] = row["chain_seq"] = len(self.t.audit) + 1
            row["mac"] = None
            self.t.audit.append(row)

    def audit_head(self) -> ChainHead | None:
        return ChainHead(0, self.t.meta.get(MASTER_KEY_CURRENT), len(self.t.audit), None)

    def audit_chain_rows(self, batch: int = 2000) -> Iterator[Any]:
        for r in self.t.audit:
            yield (r["id"], r["chain_seq"], r["mac"],
                   *(r[c] for c in CONTENT + OPTIONAL_CONTENT))

    def unchained_audit(self, started_after: int) -> tuple[int, list[int]]:
        return 0, []

    def audit_records(self, key_id: str | None = None,
                      limit: int = 100) -> list[dict[str, Any]]:
        rows = [dict(r) for r in reversed(self.t.audit)
                if key_id is None or r["key_id"] == key_id]
        return rows[:limit]

    def audit_quota(self, endpoint_id: str) -> QuotaUse | None:
        return self.t.quotas.get(endpoint_id)

    def set_audit_quota(self, endpoint_id: str, use: QuotaUse) -> None:
        self._writing()
        self.t.quotas[endpoint_id] = use


class MemoryReplayCache(Part):
    """service.ports.ReplayCache (store/replay.py)."""

    def remember_message(self, signer_id: str, digest: str, expires_at: datetime,
                         now: datetime) -> bool:
        self._writing()
        if (signer_id, digest) in self.t.seen:
            return False
        self.t.seen[(signer_id, digest)] = expires_at
        return True


class MemoryRefusals(Part):
    """service.ports.Refusals (store/failures.py)."""

    def strikes(self, name_key: str, source_key: str) -> dict[str, Strikes]:
        return {k: self.t.strikes[k] for k in (name_key, source_key) if k in self.t.strikes}

    def set_strikes(self, key: str, strikes: Strikes) -> None:
        self._writing()
        self.t.strikes[key] = strikes

    def clear_strikes(self, key: str) -> None:
        if key in self.t.strikes:
            self._writing()
            del self.t.strikes[key]

    def _stale(self, last_before: datetime, now: datetime) -> list[str]:
        return [k for k, s in self.t.strikes.items() if s.last_at < last_before
                and (s.barred_until is None or s.barred_until <= now)]

    def stale_strikes(self, last_before: datetime, now: datetime) -> bool:
        return bool(self._stale(last_before, now))

    def forget_strikes(self, last_before: datetime, now: datetime) -> int:
        gone = self._stale(last_before, now)
        if gone:
            self._writing()
        for k in gone:
            del self.t.strikes[k]
        return len(gone)

    def tally(self, source: str, reason: str, started_at: datetime) -> Any:
        return self.t.tallies.get((source, reason, started_at))

    def insert_tally(self, *, source: str, reason: str, started_at: datetime, operation: str,
                     at: datetime, detail: str) -> None:
        self._writing()
        if (source, reason, started_at) in self.t.tallies:
            raise ConstraintViolation("tally exists")
        self.t.tallies[(source, reason, started_at)] = TallyRow(
            source, reason, started_at, operation, 1, at, detail)

    def update_tally(self, source: str, reason: str, started_at: datetime, *, count: int,
                     at: datetime, detail: str) -> None:
        self._writing()
        pk = (source, reason, started_at)
        if pk in self.t.tallies:
            self.t.tallies[pk] = dataclasses.replace(self.t.tallies[pk], count=count,
                                                     last_at=at, detail=detail)

    def due_tallies(self, started_before: datetime, limit: int) -> list[Any]:
        rows = sorted((r for r in self.t.tallies.values() if r.started_at < started_before),
                      key=lambda r: (r.started_at, r.source, r.reason))
        return rows[:limit]

    def take_tally(self, source: str, reason: str, started_at: datetime) -> bool:
        self._writing()
        return self.t.tallies.pop((source, reason, started_at), None) is not None


class MemorySubscriptions(Part):
    """service.ports.Subscriptions (store/subscriptions.py)."""

    def insert_subscription(self, s: Subscription, now: datetime) -> None:
        self._writing()
        if s.subscription_id in self.t.subscriptions:
            raise ConstraintViolation(f"subscription {s.subscription_id} exists")
        self.t.subscriptions[s.subscription_id] = s

    def get_subscription(self, subscription_id: str) -> Subscription | None:
        return self.t.subscriptions.get(subscription_id)

    def renew_subscription(self, subscription_id: str, expires: datetime) -> None:
        self._writing()
        s = self.t.subscriptions.get(subscription_id)
        if s is not None:
            self.t.subscriptions[subscription_id] = dataclasses.replace(s, expires=expires)

    def delete_subscription(self, subscription_id: str) -> None:
        self._writing()
        self.t.pending.pop(subscription_id, None)
        self.t.subscriptions.pop(subscription_id, None)

    def end_subscription(self, sub: Subscription, status: str, reason: str,
                         now: datetime) -> None:
        self.delete_subscription(sub.subscription_id)
        if sub.end_to:
            self.t.ends.append(SubscriptionEnd(self.t.next_end_id, sub.subscription_id,
                                               sub.end_to, sub.origin, status, reason[:512],
                                               now))
            self.t.next_end_id += 1

    def subscriptions_of(self, endpoint_id: str | None = None,
                         pep_id: str | None = None) -> list[Subscription]:
        return sorted((s for s in self.t.subscriptions.values()
                       if (s.endpoint_id == endpoint_id if endpoint_id is not None
                           else s.pep_id == pep_id)),
                      key=lambda s: s.subscription_id)

    def subscription_ends(self, now: datetime | None = None,
                          limit: int = 100) -> list[SubscriptionEnd]:
        return [e for e in self.t.ends
                if now is None or e.end_id not in self.t.end_retry_at
                or self.t.end_retry_at[e.end_id] <= now][:limit]

    def retry_subscription_end(self, end_id: int, attempts: int, at: datetime) -> None:
        self._writing()
        self.t.ends = [dataclasses.replace(e, attempts=attempts) if e.end_id == end_id else e
                       for e in self.t.ends]
        self.t.end_retry_at[end_id] = at

    def forget_subscription_end(self, end_id: int) -> None:
        self._writing()
        self.t.ends = [e for e in self.t.ends if e.end_id != end_id]

    def _granted(self, endpoint_id: str, realms: Iterable[str]) -> bool:
        row = self.t.endpoints.get(endpoint_id)
        return row is not None and _meets(row.endpoint.grants, realms)

    def subscriptions_for_key(self, key: Key, now: datetime) -> list[Subscription]:
        users = {eid for kid, eid in self.t.key_use if kid == key.key_id}
        return [s for s in self.t.subscriptions.values()
                if s.expires > now and s.update_type in ("Keys", "AllKeys")
                and (((s.pep_id is None or s.pep_id == key.pep_id)
                      and self._granted(s.endpoint_id, key.realms))
                     or s.pep_id in users
                     or (s.pep_id is None and s.endpoint_id in users))]

    def subscriptions_for_object(self, types: Sequence[str], realms: Sequence[str],
                                 now: datetime) -> list[Subscription]:
        return [s for s in self.t.subscriptions.values()
                if s.expires > now and s.update_type in types
                and self._granted(s.endpoint_id, realms)]

    def expired_subscriptions(self, now: datetime, limit: int = 100) -> list[Subscription]:
        return [s for s in self.t.subscriptions.values() if s.expires <= now][:limit]

    def raise_pending(self, subscription_ids: Collection[str], token: int,
                      now: datetime) -> None:
        self._writing()
        for subscription_id in subscription_ids:
            p = self.t.pending.get(subscription_id)
            if p is None:
                self.t.pending[subscription_id] = PendingRow(token, 0, now)
            else:
                p.token, p.attempts, p.next_attempt_at = max(p.token, token), 0, now

    def due_pending(self, now: datetime, limit: int = 50, exclude: Collection[str] = (),
                    exclude_endpoints: Collection[str] = ()) -> list[Pending]:
        due = sorted(((p.next_attempt_at, sid, p) for sid, p in self.t.pending.items()
                      if p.next_attempt_at <= now and self.t.subscriptions[sid].expires > now
                      and sid not in exclude
                      and self.t.subscriptions[sid].endpoint_id not in exclude_endpoints),
                     key=lambda d: d[0])
        return [Pending(self.t.subscriptions[sid], p.token, p.attempts, p.failing_since)
                for _, sid, p in due[:limit]]

    def retry_later(self, subscription_id: str, token: int, attempts: int,
                    at: datetime, failing_since: datetime | None = None) -> None:
        self._writing()
        p = self.t.pending.get(subscription_id)
        if p is None:
            return
        p.failing_since = failing_since
        if p.token == token:
            p.attempts, p.next_attempt_at = attempts, at

    def acknowledge(self, endpoint_id: str, reached: int, pep_id: str | None = None,
                    subscription_id: str | None = None,
                    types: Sequence[str] | None = None) -> int:
        self._writing()
        mine = {s.subscription_id for s in self.t.subscriptions.values()
                if s.endpoint_id == endpoint_id
                and (types is None or s.update_type in types)
                and (subscription_id is None or s.subscription_id == subscription_id)
                and (pep_id is None or s.pep_id == pep_id)}
        gone = [sid for sid, p in self.t.pending.items() if sid in mine and p.token <= reached]
        for sid in gone:
            del self.t.pending[sid]
        return len(gone)

    def pending_total(self) -> int:
        return len(self.t.pending)

    def pending_count(self, endpoint_id: str) -> int:
        return sum(self.t.subscriptions[sid].endpoint_id == endpoint_id for sid in self.t.pending)


class MemorySealedValues(Part):
    """service.ports.SealedValues (store/sealed.py). The fake's audit chain has no key."""

    def get_meta(self, name: str) -> str | None:
        return self.t.meta.get(name)

    def set_meta(self, name: str, value: str) -> None:
        self._writing()
        self.t.meta[name] = value

    def current_master_key_id(self) -> str | None:
        return self.t.meta.get(MASTER_KEY_CURRENT)

    def _sealed(self) -> list[tuple[str, Any, Any, str, bytes]]:
        rows: list[tuple[str, Any, Any, str, bytes]] = []
        rows += [("key", kid, r.key.version, r.master_key_id, r.sealed)
                 for kid, r in self.t.keys.items()
                 if r.sealed is not None and r.master_key_id is not None]
        rows += [("kek", eid, kid, r.master_key_id, r.sealed)
                 for (eid, kid), r in self.t.wrapping.items()
                 if r.sealed is not None and r.master_key_id is not None]
        rows += [("secret", eid, "", c.master_key_id, c.sealed_secret)
                 for eid, c in self.t.credentials.items()
                 if c.sealed_secret is not None and c.master_key_id is not None]
        return rows

    def sealed_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, _, _, mk, _ in self._sealed():
            counts[mk] = counts.get(mk, 0) + 1
        return counts

    def sealed_not_under(self, master_key_id: str, limit: int,
                         after_key: str = "") -> list[tuple[str, Any, Any, str, bytes]]:
        rows = [r for r in self._sealed() if r[3] != master_key_id]
        keys = sorted((r for r in rows if r[0] == "key" and r[1] > after_key),
                      key=lambda r: r[1])
        return [*keys, *(r for r in rows if r[0] != "key")][:limit]

    def reseal(self, rows: Sequence[tuple[tuple[str, Any, Any, str, bytes], bytes]],
               new_master: str) -> int:
        return sum(self._reseal(row, sealed, new_master) for row, sealed in rows)

    def _reseal(self, row: tuple[str, Any, Any, str, bytes], sealed: bytes,
                new_master: str) -> bool:
        self._writing()
        kind, a, b, old_master, old_sealed = row
        if kind == "secret":
            c = self.t.credentials.get(a)
            if c is None or (c.master_key_id, c.sealed_secret) != (old_master, old_sealed):
                return False
            self.t.credentials[a] = c._replace(sealed_secret=sealed, master_key_id=new_master)
            return True
        if kind == "key":
            k = self.t.keys.get(a)
            if k is None or (k.master_key_id, k.sealed, k.key.version) != (old_master,
                                                                            old_sealed, b):
                return False
            k.sealed, k.master_key_id = sealed, new_master
            return True
        w = self.t.wrapping.get((a, b))
        if w is None or (w.master_key_id, w.sealed) != (old_master, old_sealed):
            return False
        w.sealed, w.master_key_id = sealed, new_master
        return True


class MemoryUnitOfWork:
    """One transaction's repositories over its own copy of the store's tables."""

    def __init__(self, store: MemoryStore, tables: Tables, write: bool,
                 read_only: bool) -> None:
        self.store = store
        self.tables = tables
        self.write = write
        self.read_only = read_only
        self.keys = MemoryKeys(self)
        self.endpoints = MemoryEndpoints(self)
        self.objects = MemoryObjects(self)
        self.templates = MemoryTemplates(self)
        self.changes = MemoryChanges(self)
        self.audit = MemoryAudit(self)
        self.replay = MemoryReplayCache(self)
        self.refusals = MemoryRefusals(self)
        self.subscriptions = MemorySubscriptions(self)
        self.sealed = MemorySealedValues(self)


class MemoryStore:
    """service.ports.Store in memory. `tables` is what the last committed unit of work
    left; `commits` counts the units of work that changed it."""

    def __init__(self, master_key_id: str | None = None) -> None:
        self.audit: Any = None
        self.tables = Tables()
        if master_key_id is not None:
            self.tables.meta[MASTER_KEY_CURRENT] = master_key_id
        self.commits = 0
        self.units = 0  # every unit of work opened (committed, discarded or read)

    @contextmanager
    def unit_of_work(self, write: bool = False, durable: bool = True,
                     read_only: bool = False) -> Iterator[MemoryUnitOfWork]:
        read_only = read_only and not write
        base = self.commits
        unit = MemoryUnitOfWork(self, copy.deepcopy(self.tables), write, read_only)
        self.units += 1
        yield unit  # an exception discards the unit's copy
        if unit.tables != self.tables:
            if self.commits != base:
                raise AssertionError("two units of work changed the store at once: the "
                                     "store's write lock would have kept them apart")
            self.tables = unit.tables
            self.commits += 1


# mypy proves the fake implements the ports: a signature that drifts fails here.
_unit: type[UnitOfWork] = MemoryUnitOfWork
_store: type[Store] = MemoryStore
