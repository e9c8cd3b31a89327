"""Queries on the store-wide change sequence: key pages for GetUpdateList and WS-Enumeration
(keyset pagination: WHERE change_seq > :pos ORDER BY change_seq LIMIT n, so the cost of a
page does not depend on its position), batch loading of key metadata, subscriptions and
pending UpdatePending notifications (WS-Eventing)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from functools import cache, lru_cache

from sqlalchemy import (
    BindParameter,
    Connection,
    Executable,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
    update,
)

from ..domain.model import DataSet, Extensions, Key, KeyState, NameValue, SourceKind
from . import tables as t

# Key columns a SelectorFilter may test for equality.
KEY_SELECTOR_COLUMNS = {"KeyId": "id", "FriendlyName": "friendly_name", "State": "state",
                        "PepId": "pep_id", "CipherType": "cipher_type",
                        "TemplateId": "template_id"}


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
    """A WS-Eventing SubscriptionEnd waiting to be sent to a subscription's EndTo."""

    end_id: int
    subscription_id: str
    end_to: str
    origin: str | None
    status: str
    reason: str


_STATES = {s.value: s for s in KeyState}
_SOURCES = {s.value: s for s in SourceKind}


# The metadata columns of `keys` (no sealed value), in the order key_from_row reads them.
KEY_FIELDS = ("id", "state", "cipher_type", "length_bits", "version", "edit_datetime",
              "created_at", "t_cached", "friendly_name", "t_expired", "t_disabled",
              "description", "source_kind", "source_id", "template_id", "pep_id",
              "change_seq", "realms", "facets")
KEY_COLUMNS = tuple(t.keys.c[n] for n in KEY_FIELDS)
_N_KEY = len(KEY_FIELDS)
SEQ, REALMS, FACETS = (KEY_FIELDS.index(n) for n in ("change_seq", "realms", "facets"))
# keys.facets: the tables holding rows of the key besides key_realms (NULL: not known)
ATTRIBUTES, DATASETS, EXTENSIONS = 1, 2, 4
_SEP = "\n"  # never in a realm URI (domain.realms.REALM_URI)


def join_realms(realms: Iterable[str]) -> str:
    """A key's realms as keys.realms holds them: sorted, one per line."""
    realms = sorted(set(realms))
    if any(_SEP in r for r in realms):
        raise ValueError("a realm name holds a line break")
    return _SEP.join(realms)


def facet_bits(key: Key, datasets: bool = True) -> int:
    """keys.facets of a key's attributes, extensions and (datasets=True) data sets."""
    return ((ATTRIBUTES if key.attributes else 0) | (EXTENSIONS if key.extensions else 0)
            | (DATASETS if datasets and key.datasets else 0))


def split_realms(text: str | None) -> tuple[str, ...]:
    """keys.realms as a sorted tuple (the inverse of join_realms)."""
    return tuple(text.split(_SEP)) if text else ()


def readable(text: str | None, realms: frozenset[str]) -> bool:
    """Whether a key whose keys.realms is `text` is in one of `realms`."""
    if not text:
        return False
    return text in realms or (_SEP in text and not realms.isdisjoint(text.split(_SEP)))


def key_from_row(row, attrs: list[NameValue],  # type: ignore[no-untyped-def]
                 datasets: list[DataSet], ext: Sequence[tuple[str, str, str]] = ()) -> Key:
    """A Key from a row that starts with KEY_COLUMNS, and its facets (sorted here: callers
    need not). Positional, both ways: reading 16 Row attributes by name, or passing 20
    keyword arguments, costs more than the Key (see _KEY_ORDER)."""
    (kid, state, cipher, length, version, edited, created, t_cached, name, t_expired,
     t_disabled, description, source_kind, source_id, template_id, pep_id, _,
     realms, _) = row[:_N_KEY]
    return Key(
        kid, _STATES[state], cipher, length, version, edited, created, t_cached, name,
        t_expired, t_disabled, description, _SOURCES[source_kind], source_id, template_id,
        pep_id, tuple(sorted(attrs, key=_by_name) if len(attrs) > 1 else attrs),
        tuple(sorted(datasets, key=_by_name_value) if len(datasets) > 1 else datasets),
        split_realms(realms), None, extensions_from(ext) if ext else _NO_EXTENSIONS)


# The order of Key's fields that key_from_row passes them in.
_KEY_ORDER = ("key_id", "state", "cipher_type", "length_bits", "version", "edit_datetime",
              "created_at", "t_cached", "friendly_name", "t_expired", "t_disabled",
              "description", "source_kind", "source_id", "template_id", "pep_id",
              "attributes", "datasets", "realms", "value", "extensions")
if tuple(f.name for f in fields(Key))[:len(_KEY_ORDER)] != _KEY_ORDER:
    raise RuntimeError("domain.model.Key's fields moved: update store.updates.key_from_row")


_NO_EXTENSIONS = Extensions()  # frozen: one shared empty value


def extensions_from(rows: Iterable[tuple[str, str, str]]) -> Extensions:
    """Extensions from (section, name, value) rows: "v" vendor, "p" application."""
    vendor: list[NameValue] = []
    application: list[NameValue] = []
    for section, name, value in rows:
        (vendor if section == "v" else application).append(NameValue(name, value))
    return Extensions(tuple(sorted(vendor, key=_by_name)),
                      tuple(sorted(application, key=_by_name)))


def _by_name(a: NameValue) -> str:
    return a.name


def _by_name_value(d: DataSet) -> tuple[str, str]:
    return d.name, d.value


def keys_from_rows(conn: Connection, rows: Sequence) -> list[Key]:  # type: ignore[type-arg]
    """Keys for rows that start with KEY_COLUMNS: the realms are on the row; the other
    facets (attributes, data sets, extensions) of the keys that have any (keys.facets)
    come back in ONE UNION ALL query."""
    facets: dict[str, tuple[list, list, list]] = {}  # type: ignore[type-arg]
    empty: tuple[list, list, list] = ([], [], [])  # type: ignore[type-arg]
    ids = [row[0] for row in rows if row[FACETS] != 0]  # None: not known, look
    for kid, facet, name, value, size in conn.execute(_facets(), {"ids": ids}).all() \
            if ids else ():
        box = facets.get(kid)
        if box is None:
            box = facets[kid] = ([], [], [])
        if facet == "a":
            box[0].append(NameValue(name, value))
        elif facet == "d":
            box[1].append(DataSet(name, value, size))
        else:
            box[2].append((facet, name, value))
    return [key_from_row(row, *facets.get(row[0], empty)) for row in rows]


@cache
def _facets() -> Executable:
    a, b, x = t.key_attributes.c, t.dataset_bindings.c, t.extensions.c
    ids: BindParameter[list[str]] = bindparam("ids", expanding=True)
    return union_all(
        select(a.key_id, literal("a"), a.name, a.value, null()).where(a.key_id.in_(ids)),
        select(b.key_id, literal("d"), b.name, b.value, func.max(b.sizeof_value))
        .where(b.key_id.in_(ids)).group_by(b.key_id, b.name, b.value),
        select(x.owner_id, x.section, x.name, x.value, null())
        .where(and_(x.owner_kind == "Key", x.owner_id.in_(ids))))


@lru_cache(maxsize=256)
def _scope_stmt(pep: bool, equals: tuple[str, ...], count: bool):  # type: ignore[no-untyped-def]
    """Keys of a scope on a keyset range (or their count), built once per shape: SQLAlchemy
    spends ~0.5 ms per request keying a freshly built statement for its compiled cache.
    A page is filtered by realm on the rows it reads (keys.realms, see key_page); a count
    by key_realms, the index by realm."""
    k = t.keys.c
    conds = [k.change_seq > bindparam("pos"), k.change_seq <= bindparam("high")]
    if count:
        conds.append(exists().where(and_(t.key_realms.c.key_id == k.id,
                                         t.key_realms.c.realm.in_(
                                             bindparam("realms", expanding=True)))))
    if pep:
        conds.append(k.pep_id == bindparam("pep"))
    conds += [getattr(k, KEY_SELECTOR_COLUMNS[n]) == bindparam(f"eq{i}")
              for i, n in enumerate(equals)]
    if count:
        return select(func.count()).select_from(t.keys).where(and_(*conds))
    return select(*KEY_COLUMNS).where(and_(*conds)).order_by(k.change_seq) \
        .limit(bindparam("limit"))


def _scope_params(scope: KeyScope, pos: int, high: int) -> dict[str, object]:
    params: dict[str, object] = {"pos": pos, "high": high, "realms": list(scope.realms),
                                 "pep": scope.pep_id}
    params.update((f"eq{i}", v) for i, (_, v) in enumerate(scope.equals))
    return params


@cache
def _high_water():  # type: ignore[no-untyped-def]
    """Every Enumerate reads it: built once (SQLAlchemy keys a fresh statement per call)."""
    return select(func.coalesce(func.max(t.changes.c.seq), 0))


MAX_SCAN = 4096  # rows read at once while looking for keys in the caller's realms


class UpdatesRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def high_water(self) -> int:
        """The newest position on the change sequence (0 for an empty store)."""
        return int(self.conn.execute(_high_water()).scalar_one())

    def key_page(self, scope: KeyScope, pos: int, high: int,
                 limit: int) -> list[tuple[int, Key]]:
        """Up to `limit` keys in the scope's realms after `pos` (exclusive) up to `high`
        (inclusive), in change order, each with its change_seq. Metadata only: sealed
        values are not read. Rows are read in change order (more at a time while few are
        in the realms) and kept when their keys.realms meets the scope's."""
        stmt = _scope_stmt(scope.pep_id is not None, tuple(n for n, _ in scope.equals), False)
        params = _scope_params(scope, pos, high)
        realms = frozenset(scope.realms)
        if not realms:
            return []
        found: list = []  # type: ignore[type-arg]
        batch = limit
        while len(found) < limit:  # bounded: each round moves pos on, up to high
            rows = self.conn.execute(stmt, {**params, "limit": batch}).all()
            found += (row for row in rows if readable(row[REALMS], realms))
            if len(rows) < batch:
                break
            params["pos"] = rows[-1][SEQ]
            batch = min(batch * 4, MAX_SCAN)
        del found[limit:]
        if not found:
            return []
        keys = keys_from_rows(self.conn, found)
        return [(row[SEQ], key) for row, key in zip(found, keys, strict=True)]

    def count_keys(self, scope: KeyScope, pos: int, high: int) -> int:
        return int(self.conn.execute(_scope_stmt(scope.pep_id is not None,
                                                 tuple(n for n, _ in scope.equals), True),
                                     _scope_params(scope, pos, high)).scalar_one())

    # ---- subscriptions (WS-Eventing) -----------------------------------------------------
    def insert_subscription(self, s: Subscription, now: datetime) -> None:
        self.conn.execute(t.subscriptions.insert().values(
            id=s.subscription_id, endpoint_id=s.endpoint_id, notify_to=s.notify_to,
            mode=s.mode, update_type=s.update_type, pep_id=s.pep_id, expires_at=s.expires,
            created_at=now, origin=s.origin, end_to=s.end_to, realms=json.dumps(s.realms)))

    def get_subscription(self, subscription_id: str) -> Subscription | None:
        row = self.conn.execute(select(t.subscriptions).where(
            t.subscriptions.c.id == subscription_id)).first()
        return _subscription(row) if row else None

    def renew_subscription(self, subscription_id: str, expires: datetime) -> None:
        self.conn.execute(update(t.subscriptions).where(t.subscriptions.c.id == subscription_id)
                          .values(expires_at=expires))

    def delete_subscription(self, subscription_id: str) -> None:
        self.conn.execute(delete(t.pending_updates).where(
            t.pending_updates.c.subscription_id == subscription_id))
        self.conn.execute(delete(t.subscriptions).where(t.subscriptions.c.id == subscription_id))

    def end_subscription(self, sub: Subscription, status: str, reason: str,
                         now: datetime) -> None:
        """Remove the subscription and its pending notifications; queue a SubscriptionEnd
        to its EndTo, if it gave one, in the same transaction."""
        self.delete_subscription(sub.subscription_id)
        if sub.end_to:
            self.conn.execute(t.subscription_ends.insert().values(
                subscription_id=sub.subscription_id, end_to=sub.end_to, origin=sub.origin,
                status=status, reason=reason[:512], at=now))

    def subscriptions_of(self, endpoint_id: str | None = None,
                         pep_id: str | None = None) -> list[Subscription]:
        """Every subscription (live or not) made by an endpoint, or scoped to a PEP."""
        s = t.subscriptions.c
        cond = s.endpoint_id == endpoint_id if endpoint_id is not None else s.pep_id == pep_id
        return [_subscription(r) for r in self.conn.execute(
            select(t.subscriptions).where(cond).order_by(s.id)).all()]

    def subscription_ends(self, limit: int = 100) -> list[SubscriptionEnd]:
        e = t.subscription_ends.c
        rows = self.conn.execute(select(t.subscription_ends).order_by(e.id).limit(limit)).all()
        return [SubscriptionEnd(r.id, r.subscription_id, r.end_to, r.origin, r.status,
                                r.reason) for r in rows]

    def forget_subscription_end(self, end_id: int) -> None:
        self.conn.execute(delete(t.subscription_ends).where(t.subscription_ends.c.id == end_id))

    def subscriptions_for_key(self, key: Key, now: datetime) -> list[Subscription]:
        """Live subscriptions whose endpoint has a grant in one of the key's realms (and,
        for a PEP scope, whose PEP the key is destined for). The right is checked by the
        caller."""
        s, er = t.subscriptions.c, t.realm_grants.c
        rows = self.conn.execute(select(t.subscriptions).where(and_(
            s.expires_at > now, s.update_type.in_(("Keys", "AllKeys")),
            or_(s.pep_id.is_(None), s.pep_id == key.pep_id),
            exists().where(and_(er.endpoint_id == s.endpoint_id,
                                er.realm.in_(list(key.realms))))))).all()
        return [_subscription(r) for r in rows]

    def subscriptions_for_object(self, types: Sequence[str], realms: Sequence[str],
                                 now: datetime) -> list[Subscription]:
        """Live subscriptions to one of `types` whose endpoint has a grant in one of the
        object's realms. The right is checked by the caller."""
        s, er = t.subscriptions.c, t.realm_grants.c
        rows = self.conn.execute(select(t.subscriptions).where(and_(
            s.expires_at > now, s.update_type.in_(list(types)),
            exists().where(and_(er.endpoint_id == s.endpoint_id,
                                er.realm.in_(list(realms))))))).all()
        return [_subscription(r) for r in rows]

    def expired_subscriptions(self, now: datetime, limit: int = 100) -> list[Subscription]:
        rows = self.conn.execute(select(t.subscriptions).where(
            t.subscriptions.c.expires_at <= now).limit(limit)).all()
        return [_subscription(r) for r in rows]

    def raise_pending(self, subscription_id: str, token: int, now: datetime) -> None:
        """Record that the subscriber must reach `token`; due at once."""
        p = t.pending_updates.c
        res = self.conn.execute(update(t.pending_updates).where(
            p.subscription_id == subscription_id).values(
                token=case((p.token > token, p.token), else_=token), attempts=0,
                next_attempt_at=now))
        if res.rowcount == 0:
            self.conn.execute(t.pending_updates.insert().values(
                subscription_id=subscription_id, token=token, attempts=0,
                next_attempt_at=now))

    def due_pending(self, now: datetime, limit: int = 50) -> list[Pending]:
        p, s = t.pending_updates.c, t.subscriptions.c
        rows = self.conn.execute(
            select(t.subscriptions, p.token, p.attempts, p.failing_since)
            .join(t.pending_updates, p.subscription_id == s.id)
            .where(and_(p.next_attempt_at <= now, s.expires_at > now))
            .order_by(p.next_attempt_at).limit(limit)).all()
        return [Pending(_subscription(r), r.token, r.attempts, r.failing_since) for r in rows]

    def retry_later(self, subscription_id: str, token: int, attempts: int,
                    at: datetime, failing_since: datetime | None = None) -> None:
        """Back off, unless a newer change has raised the notification meanwhile.
        failing_since: when delivery started failing (None: the subscriber answered)."""
        p = t.pending_updates.c
        self.conn.execute(update(t.pending_updates).where(
            p.subscription_id == subscription_id).values(
                failing_since=failing_since))
        self.conn.execute(update(t.pending_updates).where(and_(
            p.subscription_id == subscription_id, p.token == token)).values(
                attempts=attempts, next_attempt_at=at))

    def acknowledge(self, endpoint_id: str, reached: int, pep_id: str | None = None,
                    subscription_id: str | None = None,
                    types: Sequence[str] | None = None) -> int:
        """Drop pending notifications the endpoint has caught up with (token <= reached):
        of one subscription, of its subscriptions scoped to a PEP, or of all of them
        (of the update `types` given)."""
        p, s = t.pending_updates.c, t.subscriptions.c
        mine = select(s.id).where(s.endpoint_id == endpoint_id)
        if types is not None:
            mine = mine.where(s.update_type.in_(list(types)))
        if subscription_id is not None:
            mine = mine.where(s.id == subscription_id)
        if pep_id is not None:
            mine = mine.where(s.pep_id == pep_id)
        return int(self.conn.execute(delete(t.pending_updates).where(and_(
            p.token <= reached, p.subscription_id.in_(mine)))).rowcount)

    def pending_count(self, endpoint_id: str) -> int:
        p, s = t.pending_updates.c, t.subscriptions.c
        return int(self.conn.execute(select(func.count()).select_from(t.pending_updates).where(
            p.subscription_id.in_(select(s.id).where(s.endpoint_id == endpoint_id))))
            .scalar_one())


def _subscription(row) -> Subscription:  # type: ignore[no-untyped-def]
    return Subscription(row.id, row.endpoint_id, row.notify_to, row.mode, row.update_type,
                        row.pep_id, row.expires_at, row.origin, row.end_to,
                        tuple(json.loads(row.realms)) if row.realms else ())
