"""The ports: what the service asks of the store, as protocols.

A handler works in one unit of work (one transaction), which hands out one repository
per aggregate. The service imports these protocols and the records they speak in
(`domain.model`, `domain.records`), never `store/`: `store/unit_of_work.py` implements
them on SQLAlchemy (SQLite and PostgreSQL), and the handler tests implement them in
memory (tests/fakes). The composition root (`app.py`) hands the service its Store.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from ..domain.backoff import Strikes
from ..domain.model import (
    AdminObject,
    AuditMessage,
    CredentialType,
    DataSet,
    Endpoint,
    EndpointKind,
    Key,
    KeyTemplate,
    NameValue,
    Removal,
)
from ..domain.realms import Right
from ..domain.records import (
    ChainHead,
    KeyScope,
    KeySelection,
    Pending,
    QuotaUse,
    Subscription,
    SubscriptionEnd,
)
from ..domain.wrapping import WrappingKeyInfo


class Keys(Protocol):
    """Keys (§4.1): metadata, sealed values, realms, data-set bindings (§4.9), use by
    clients and PEPs."""

    def insert_key(self, key: Key, sealed: bytes, master_key_id: str, reported_by: str | None,
                   now: datetime) -> int:
        """Insert the key; returns its position on the change sequence."""
        ...

    def add_bindings(self, key_id: str, datasets: Iterable[DataSet], reported_by: str | None,
                     now: datetime) -> None: ...

    def get_key(self, key_id: str) -> tuple[Key, bytes | None, str | None] | None:
        """The key's metadata, its sealed value and the id of the master key sealing it."""
        ...

    def find_key_ids(self, realms: Sequence[str], *, limit: int,
                     friendly_name: str | None = None, attributes: Sequence[NameValue] = (),
                     datasets: Sequence[DataSet] = (), template_id: str | None = None,
                     altered_since: datetime | None = None,
                     order: str = "created") -> list[str]:
        """Ids of keys sharing a realm with `realms` and matching every given condition
        (attributes and data sets ANDed). order: created | newest | edited."""
        ...

    def record_use(self, key_id: str, endpoint_id: str, endpoint_kind: str,
                   now: datetime) -> None: ...

    def use_by(self, key_id: str) -> list[tuple[str, str]]: ...

    def bindings(self, realms: Sequence[str], *, key_id: str | None = None,
                 dataset: DataSet | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Data-set bindings (key_id, name, value, reported_by, at) of keys in one of
        `realms`, newest first; by key, by data set, or both."""
        ...

    def has_binding(self, key_id: str, dataset: DataSet) -> bool: ...

    def key_ids_of_template(self, template_id: str) -> list[str]: ...

    def update_key(self, key: Key, sealed: bytes | None, erase: bool = False,
                   master_key_id: str | None = None) -> int:
        """Write a key's new state, dates, names and version; `sealed` re-seals the value
        under the new version with master key `master_key_id` (None with erase=True erases
        it: Destroyed). Returns the key's new position on the change sequence."""
        ...

    def set_key_realms(self, key_id: str, realms: Sequence[str], version: int,
                       now: datetime) -> int:
        """Replace a key's realms: key_realms and keys.realms, together. The key takes a
        new place on the change sequence (returned); its VERSION and EDIT_DATETIME stay
        (§4.1: realm associations do not change versioning information)."""
        ...

    def due_transitions(self, now: datetime, limit: int = 100) -> list[tuple[str, datetime]]:
        """Keys whose next date-caused state change is due at `now`: (key id, its time),
        earliest first."""
        ...

    def claim_transition(self, key_id: str, due: datetime, following: datetime | None,
                         version: int, now: datetime) -> int | None:
        """Claim the key's transition due at `due` (one node wins), schedule the
        `following` one and give the key a new place on the change sequence (returned;
        None: claimed elsewhere, or the key changed meanwhile). VERSION and EDIT_DATETIME
        stay: the dates were in the key's attributes already."""
        ...

    def list_key_ids(self, realms: Sequence[str], *, limit: int,
                     altered_since: datetime | None = None) -> list[str]: ...

    def count_by_state(self) -> dict[str, int]:
        """How many keys are in each state (KeyState values), for monitoring."""
        ...


class Endpoints(Protocol):
    """Clients and PEPs (§4.6, §4.7) and what authenticates and serves them: realm grants,
    credentials, sessions, failed-password counts, wrapping keys (KEKs)."""

    def insert_endpoint(self, ep: Endpoint, now: datetime) -> None: ...

    def endpoint_name_taken(self, kind: EndpointKind, name: str) -> bool: ...

    def get_endpoint(self, endpoint_id: str) -> Endpoint | None: ...

    def grants_in(self, endpoint_ids: Collection[str],
                  realms: Sequence[str]) -> dict[str, dict[str, frozenset[Right]]]:
        """The grants of these endpoints (those that exist) in `realms`, by endpoint."""
        ...

    def find_client(self, name: str) -> Endpoint | None: ...

    def list_clients(self) -> list[Endpoint]: ...

    def record_auth_failure(self, endpoint_id: str, lock_after: int, now: datetime) -> bool:
        """One more wrong password; True when it locks the client (lock_after 0: never).
        Only a client that may authenticate has its password checked: Active, or Locked
        with its lockout run out (domain.backoff)."""
        ...

    def set_grants(self, endpoint_id: str, grants: dict[str, frozenset[Right]]) -> None: ...

    def reset_auth_failures(self, endpoint_id: str, locked_before: datetime | None) -> None:
        """A right credential: the count of wrong ones goes, and a lockout that began
        before `locked_before` (one that has run out; None: lockouts do not run out) ends.
        A lockout that began meanwhile, on another worker, stays."""
        ...

    def unlock(self, endpoint_id: str) -> bool:
        """A Locked client becomes Active, its count of wrong passwords cleared; False
        when it was not Locked."""
        ...

    def find_endpoints(self, name: str) -> list[Endpoint]:
        """Clients and PEPs of that name (a name is unique per kind)."""
        ...

    def insert_endpoint_credential(self, endpoint_id: str, credential_type: CredentialType, *,
                                   certificate: bytes | None = None,
                                   cert_sha256: str | None = None,
                                   sealed_secret: bytes | None = None,
                                   master_key_id: str | None = None) -> None: ...

    def delete_endpoint_credential(self, endpoint_id: str) -> bool: ...

    def certificate_taken(self, cert_sha256: str) -> bool: ...

    def endpoint_credential(self, endpoint_id: str | None = None,
                            cert_sha256: str | None = None) -> Any:
        """(endpoint_id, credential_type, certificate, cert_sha256, sealed_secret,
        master_key_id) by endpoint or by certificate fingerprint (a named tuple)."""
        ...

    def insert_session(self, token_hash: str, endpoint_id: str, now: datetime,
                       expires: datetime) -> None: ...

    def session_endpoint(self, token_hash: str, now: datetime) -> tuple[str, datetime] | None: ...

    def revoke_session(self, token_hash: str) -> None: ...

    def insert_wrapping_key(self, info: WrappingKeyInfo, sealed: bytes | None,
                            master_key_id: str | None, certificate: bytes | None) -> None: ...

    def next_wrapping_ordinal(self, endpoint_id: str) -> int: ...

    def wrapping_keys(self, endpoint_id: str) -> list[WrappingKeyInfo]: ...

    def wrapping_key_material(self, endpoint_id: str,
                              key_id: str) -> tuple[bytes | None, str | None, bytes | None]:
        """(sealed KEK, its master key id, certificate DER) of one wrapping key."""
        ...

    def delete_wrapping_keys(self, endpoint_id: str, key_ids: Sequence[str]) -> int: ...

    def grant(self, endpoint_id: str, realm: str, rights: frozenset[Right]) -> None: ...

    def revoke(self, endpoint_id: str, realm: str) -> bool: ...

    def realm_users(self, realm: str, except_endpoint: str | None = None) -> str:
        """What still uses a realm, as text ('' when nothing): grants, objects, keys."""
        ...

    def set_password_hash(self, endpoint_id: str, password_hash: str | None) -> None: ...

    def has_open_session(self, endpoint_id: str, now: datetime) -> bool: ...

    def revoke_sessions_of(self, endpoint_id: str) -> None: ...

    def set_km_server(self, endpoint_id: str, flag: bool) -> None: ...

    def update_endpoint(self, ep: Endpoint, now: datetime) -> None: ...

    def list_endpoints(self, kind: str, realms: Sequence[str], limit: int,
                       altered_since: datetime | None = None) -> list[Endpoint]: ...

    def set_cim_identity(self, endpoint_id: str, identity: Sequence[NameValue]) -> None:
        """Keep the §4.6 CIM identity (Class/Property = value) a new endpoint presented."""
        ...

    def cim_identity(self, endpoint_id: str) -> tuple[NameValue, ...]: ...

    def delete_endpoint(self, endpoint_id: str) -> None: ...

    def count_endpoints_of_type(self, type_id: str) -> int: ...

    def peps_of(self, owner_id: str) -> list[str]: ...

    def endpoint_users(self, endpoint_id: str) -> str:
        """What still refers to an endpoint ('' when nothing): PEPs it owns, keys for it."""
        ...


class Objects(Protocol):
    """Administered objects — policies (§5), groups (§4.10, §4.11), realms (§4.5),
    endpoint types (§4.4) — their realms and associations."""

    def insert_object(self, obj: AdminObject) -> int:
        """Returns the object's position on the change sequence."""
        ...

    def update_object(self, obj: AdminObject) -> int:
        """Returns the object's new position on the change sequence."""
        ...

    def delete_object(self, kind: str, object_id: str) -> None: ...

    def get_object(self, kind: str, object_id: str) -> AdminObject | None: ...

    def find_object(self, kind: str, name: str) -> AdminObject | None: ...

    def list_objects(self, kind: str, realms: Sequence[str] | None, *, limit: int,
                     altered_since: datetime | None = None,
                     states: Sequence[str] = ()) -> list[AdminObject]:
        """Objects of a kind in any of `realms` (None: all), oldest change first."""
        ...

    def object_page(self, kinds: Sequence[str], realms: Sequence[str], pos: int, high: int,
                    limit: int) -> list[tuple[int, AdminObject]]:
        """§6.12 custom update types: objects of `kinds` in any of `realms` changed after
        `pos` up to `high`, in change order (keyset: change_seq > pos ... LIMIT n)."""
        ...

    def count_objects(self, kinds: Sequence[str], realms: Sequence[str], pos: int,
                      high: int) -> int: ...

    def set_object_realms(self, kind: str, object_id: str, realms: Iterable[str]) -> None: ...

    def associate(self, kind: str, object_id: str, target_kind: str, target_id: str) -> bool: ...

    def disassociate(self, kind: str, object_id: str, target_kind: str, target_id: str) -> bool: ...

    def is_associated(self, kind: str, object_id: str, target_kind: str,
                      target_id: str) -> bool: ...

    def targets_of(self, kind: str, object_id: str) -> list[tuple[str, str]]: ...

    def sources_of(self, target_kind: str, target_id: str,
                   kinds: Sequence[str] = ()) -> list[tuple[str, str]]: ...

    def newest_assigned_key(self, policy_id: str) -> str | None:
        """The newest key a key-assignment policy created (its pool key)."""
        ...

    def drop_associations(self, kind: str, object_id: str) -> None: ...

    def enforcing_policies_for(self, targets: Sequence[tuple[str, str]]) -> list[
            tuple[AdminObject, str, str]]:
        """Enforcing policies associated with any of `targets`, with the target."""
        ...

    def enforcing_targets(self, kind: str, target_kind: str) -> list[tuple[AdminObject, str]]:
        """Enforcing policies of `kind` associated with objects of `target_kind` (groups,
        templates: few), with the target's id."""
        ...

    def policies_on_keys(self, kind: str, keys: KeySelection
                         ) -> list[tuple[str, dict[str, Any], str, str]]:
        """(policy id, body, target kind, target id) of the Enforcing policies of `kind`
        associated with the selected keys or their templates: one query, whatever the
        number of keys (bodies only: no per-row realm look-up)."""
        ...

    def key_members_among(self, group_ids: Sequence[str],
                          keys: KeySelection) -> list[tuple[str, str]]:
        """(key group id, key id): static memberships of these groups among the keys."""
        ...

    def dynamic_groups(self, kind: str) -> list[AdminObject]:
        """Dynamic groups of a kind (without realms: membership rules only)."""
        ...


class Templates(Protocol):
    """Key templates (§4.3) and their realms."""

    def insert_template(self, tpl: KeyTemplate, now: datetime) -> int:
        """Returns the template's position on the change sequence."""
        ...

    def get_template(self, template_id: str | None = None,
                     name: str | None = None) -> KeyTemplate | None: ...

    def update_template(self, tpl: KeyTemplate, now: datetime) -> int:
        """Returns the template's new position on the change sequence."""
        ...

    def template_page(self, realms: Sequence[str], pos: int, high: int,
                      limit: int) -> list[tuple[int, KeyTemplate]]:
        """§6.12 custom type KeyTemplate: templates in any of `realms` changed after `pos`
        up to `high`, in change order (keyset pagination)."""
        ...

    def count_templates(self, realms: Sequence[str], pos: int, high: int) -> int: ...

    def set_template_realms(self, template_id: str, realms: Sequence[str]) -> None: ...

    def list_templates(self, realms: Sequence[str], limit: int,
                       altered_since: datetime | None = None) -> list[KeyTemplate]: ...

    def delete_template(self, template_id: str) -> None: ...


class Changes(Protocol):
    """The store-wide change sequence as update lists read it (§6.12): its high-water
    mark, key pages, removals."""

    def record_removal(self, kind: str, object_id: str, version: int,
                       realms: Sequence[str], now: datetime,
                       kept: Sequence[str] = ()) -> int:
        """Record that `object_id` of `kind` (last at `version`) was deleted, or left
        `realms` while staying in `kept`, at `now`; returns the removal's place on the
        change sequence. Readers with Read in `realms` and none in `kept` learn of it."""
        ...

    def record_lost_reads(self, endpoint_id: str, kinds: Sequence[str], lost: Sequence[str],
                          kept: Sequence[str], now: datetime) -> dict[str, int]:
        """The endpoint lost the Read right in `lost` and keeps it in `kept`: every key
        ("Key" among `kinds`), key template ("KeyTemplate") or administered object of the
        other `kinds` in one of `lost` and in none of `kept` is removed for this endpoint
        alone. Returns the last place on the change sequence per kind."""
        ...

    def removal_page(self, kinds: Sequence[str], realms: Sequence[str], pos: int, high: int,
                     limit: int, reader: str | None = None,
                     pep_id: str | None = None) -> list[tuple[int, Removal]]:
        """Removals of objects of `kinds` that a reader with Read in `realms` (and, for
        removals of one reader, that is `reader`) could see and no longer sees, after `pos`
        up to `high`, in change order (keyset: change_seq > pos ... LIMIT n). pep_id:
        only of keys made for that PEP."""
        ...

    def count_removals(self, kinds: Sequence[str], realms: Sequence[str], pos: int,
                       high: int, reader: str | None = None,
                       pep_id: str | None = None) -> int: ...

    def prune_removals(self, before: datetime, limit: int) -> int:
        """Forget up to `limit` of the oldest removals made before `before`; the newest
        place forgotten is kept (removals_pruned_through). Returns how many went."""
        ...

    def oldest_removal(self) -> datetime | None:
        """When the oldest removal kept was made (None: none is kept)."""
        ...

    def removals_pruned_through(self) -> int:
        """The newest place on the change sequence whose removal was forgotten (0: none):
        a list from an older token may miss removals."""
        ...

    def high_water(self) -> int:
        """The newest position on the change sequence (0 for an empty store)."""
        ...

    def key_page(self, scope: KeyScope, pos: int, high: int,
                 limit: int) -> list[tuple[int, Key]]:
        """Up to `limit` keys in the scope's realms after `pos` (exclusive) up to `high`
        (inclusive), in change order, each with its change_seq. Metadata only: sealed
        values are not read. Rows are read in change order (more at a time while few are
        in the realms) and kept when their keys.realms meets the scope's."""
        ...

    def count_keys(self, scope: KeyScope, pos: int, high: int) -> int: ...


class AuditTrail(Protocol):
    """The chained audit trail (§5.4, §6.8) and each client's PushAuditMessage quota."""

    def audit_query(self, *, key_id: str | None = None, actor_id: str | None = None,
                    since: datetime | None = None, until: datetime | None = None,
                    limit: int = 100) -> list[dict[str, Any]]: ...

    def insert_audit(self, *, at: datetime, actor_id: str | None, actor_name: str | None,
                     operation: str, event: str, result: str, key_id: str | None = None,
                     pep_id: str | None = None, reported_at: datetime | None = None,
                     message: str | None = None) -> None: ...

    def insert_audit_messages(self, actor: Endpoint, msgs: Sequence[AuditMessage],
                              now: datetime) -> None: ...

    def append_audit(self, records: Sequence[dict[str, Any]]) -> None:
        """Append records (dicts of CONTENT) to the chain, in this unit of work. An audit
        record is never refused: its strings are cut to their columns (store.bounds)
        before its MAC is made, so the MAC covers what is stored."""
        ...

    def audit_head(self) -> ChainHead | None:
        """The chain's head row, whole."""
        ...

    def audit_chain_rows(self, batch: int = 2000) -> Iterator[Any]:
        """Chained records in chain order: (id, chain_seq, mac, *CONTENT,
        *OPTIONAL_CONTENT), streamed."""
        ...

    def unchained_audit(self, started_after: int) -> tuple[int, list[int]]:
        """(how many records are older than the chain, ids of records newer than its
        start that carry no place in it — up to 10)."""
        ...

    def audit_records(self, key_id: str | None = None,
                      limit: int = 100) -> list[dict[str, Any]]: ...

    def audit_quota(self, endpoint_id: str) -> QuotaUse | None: ...

    def set_audit_quota(self, endpoint_id: str, use: QuotaUse) -> None: ...


class ReplayCache(Protocol):
    """Signed messages seen, until they expire: a signed message is accepted once."""

    def remember_message(self, signer_id: str, digest: str, expires_at: datetime,
                         now: datetime) -> bool:
        """Record a signed message; False when it was seen before (a replay)."""
        ...


class Refusals(Protocol):
    """Failed authentications: backoff counts per user name and source, and the tallies
    of refused unauthenticated requests."""

    def strikes(self, name_key: str, source_key: str) -> dict[str, Strikes]:
        """The counts of a user name and of a source, by key (absent: none)."""
        ...

    def set_strikes(self, key: str, strikes: Strikes) -> None: ...

    def clear_strikes(self, key: str) -> None: ...

    def stale_strikes(self, last_before: datetime, now: datetime) -> bool:
        """Are there counts nothing needs any more (no bar running, last failure old)?"""
        ...

    def forget_strikes(self, last_before: datetime, now: datetime) -> int:
        """Drop the counts nothing needs any more."""
        ...

    def tally(self, source: str, reason: str, started_at: datetime) -> Any: ...

    def insert_tally(self, *, source: str, reason: str, started_at: datetime, operation: str,
                     at: datetime, detail: str) -> None: ...

    def update_tally(self, source: str, reason: str, started_at: datetime, *, count: int,
                     at: datetime, detail: str) -> None: ...

    def due_tallies(self, started_before: datetime, limit: int) -> list[Any]: ...

    def take_tally(self, source: str, reason: str, started_at: datetime) -> bool:
        """Remove a closed tally; False when another process took it first."""
        ...


class Subscriptions(Protocol):
    """Subscriptions (§6.11, WS-Eventing) and their outbox: pending UpdatePending
    deliveries and SubscriptionEnd messages."""

    def insert_subscription(self, s: Subscription, now: datetime) -> None: ...

    def get_subscription(self, subscription_id: str) -> Subscription | None: ...

    def renew_subscription(self, subscription_id: str, expires: datetime) -> None: ...

    def delete_subscription(self, subscription_id: str) -> None: ...

    def end_subscription(self, sub: Subscription, status: str, reason: str,
                         now: datetime) -> None:
        """Remove the subscription and its pending notifications; queue a SubscriptionEnd
        to its EndTo, if it gave one, in the same transaction."""
        ...

    def subscriptions_of(self, endpoint_id: str | None = None,
                         pep_id: str | None = None) -> list[Subscription]:
        """Every subscription (live or not) made by an endpoint, or scoped to a PEP."""
        ...

    def subscription_ends(self, now: datetime | None = None,
                          limit: int = 100) -> list[SubscriptionEnd]:
        """Queued SubscriptionEnd messages, oldest first: those due at `now` (None: all)."""
        ...

    def retry_subscription_end(self, end_id: int, attempts: int, at: datetime) -> None:
        """Try the SubscriptionEnd again at `at`, its `attempts`-th attempt having failed."""
        ...

    def forget_subscription_end(self, end_id: int) -> None: ...

    def subscriptions_for_key(self, key: Key, now: datetime) -> list[Subscription]:
        """Live subscriptions whose endpoint has a grant in one of the key's realms (and,
        for a PEP scope, whose PEP the key is destined for), or that the key was delivered
        to (USE_BY: the subscribing client, or the PEP of its scope). The right is checked
        by the caller."""
        ...

    def subscriptions_for_object(self, types: Sequence[str], realms: Sequence[str],
                                 now: datetime) -> list[Subscription]:
        """Live subscriptions to one of `types` whose endpoint has a grant in one of the
        object's realms. The right is checked by the caller."""
        ...

    def expired_subscriptions(self, now: datetime, limit: int = 100) -> list[Subscription]: ...

    def raise_pending(self, subscription_ids: Collection[str], token: int,
                      now: datetime) -> None:
        """Record that each of these subscribers must reach `token`; due at once."""
        ...

    def due_pending(self, now: datetime, limit: int = 50, exclude: Collection[str] = (),
                    exclude_endpoints: Collection[str] = ()) -> list[Pending]:
        """Notifications due at `now`, longest due first, but those of the `exclude`d
        subscriptions (being delivered) and of the subscribers in `exclude_endpoints`."""
        ...

    def retry_later(self, subscription_id: str, token: int, attempts: int,
                    at: datetime, failing_since: datetime | None = None) -> None:
        """Back off, unless a newer change has raised the notification meanwhile.
        failing_since: when delivery started failing (None: the subscriber answered)."""
        ...

    def acknowledge(self, endpoint_id: str, reached: int, pep_id: str | None = None,
                    subscription_id: str | None = None,
                    types: Sequence[str] | None = None) -> int:
        """Drop pending notifications the endpoint has caught up with (token <= reached):
        of one subscription, of its subscriptions scoped to a PEP, or of all of them
        (of the update `types` given)."""
        ...

    def pending_count(self, endpoint_id: str) -> int: ...

    def pending_total(self) -> int:
        """UpdatePending notifications not yet acknowledged, of every subscriber."""
        ...


class SealedValues(Protocol):
    """Store metadata and the values sealed under master keys: the current master key, the
    counts per master key, re-sealing during a rotation."""

    def get_meta(self, name: str) -> str | None: ...

    def set_meta(self, name: str, value: str) -> None: ...

    def current_master_key_id(self) -> str | None: ...

    def sealed_counts(self) -> dict[str, int]:
        """How many key values, KEKs, signing secrets and audit chain keys each master
        key seals."""
        ...

    def sealed_not_under(self, master_key_id: str, limit: int,
                         after_key: str = "") -> list[tuple[str, Any, Any, str, bytes]]:
        """Up to `limit` sealed rows under another master key: (table, id, version/key id,
        master key id, sealed). Key values first, in key id order after `after_key`; the
        other sealed rows once no key value is left."""
        ...

    def reseal(self, rows: Sequence[tuple[tuple[str, Any, Any, str, bytes], bytes]],
               new_master: str) -> int:
        """Replace the sealed value of each row `sealed_not_under` gave with the one paired
        with it, under `new_master`, where the row still holds exactly what was read
        (compare-and-set on its sealed bytes, master key and, for a key value, version):
        a row a request changed meanwhile is under the current master key already, or
        gone. Returns how many were replaced."""
        ...



class UnitOfWork(Protocol):
    """One transaction's repositories, one per aggregate."""

    @property
    def keys(self) -> Keys: ...

    @property
    def endpoints(self) -> Endpoints: ...

    @property
    def objects(self) -> Objects: ...

    @property
    def templates(self) -> Templates: ...

    @property
    def changes(self) -> Changes: ...

    @property
    def audit(self) -> AuditTrail: ...

    @property
    def replay(self) -> ReplayCache: ...

    @property
    def refusals(self) -> Refusals: ...

    @property
    def subscriptions(self) -> Subscriptions: ...

    @property
    def sealed(self) -> SealedValues: ...


class Store(Protocol):
    """Units of work (store.engine.Database).

    write: takes the write lock up front. durable=False: a write whose loss in a power
    failure (not a process crash) is acceptable. read_only: any write raises
    `domain.records.WriteNeeded`. `audit`: the process's audit signer
    (audit.chain.AuditChain), which chains the audit records units of work write."""

    audit: Any

    def unit_of_work(self, write: bool = False, durable: bool = True,
                     read_only: bool = False) -> AbstractContextManager[UnitOfWork]: ...


class SpaceCheck(Protocol):
    """The free-space watermark (store.space.SpaceGuard)."""

    def check(self) -> None:
        """Refuse (StorageFull) below the watermark."""
        ...

    def report(self, reason: str) -> None:
        """A write failed for lack of space."""
        ...
