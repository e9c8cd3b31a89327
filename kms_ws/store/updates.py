"""The statements and row mappings behind key pages (store.changes: keyset pagination,
WHERE change_seq > :pos ORDER BY change_seq LIMIT n, so the cost of a page does not
depend on its position), batch loading of key metadata, and subscription rows
(store.subscriptions)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import fields
from functools import cache, lru_cache

from sqlalchemy import (
    BindParameter,
    Connection,
    Executable,
    and_,
    bindparam,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)

from ..domain.model import DataSet, Extensions, Key, KeyState, NameValue, SourceKind
from ..domain.records import KEY_SELECTORS, KeyScope, Subscription
from . import tables as t

# Key columns a SelectorFilter may test for equality.
KEY_SELECTOR_COLUMNS = dict(zip(KEY_SELECTORS, (
    "id", "friendly_name", "state", "pep_id", "cipher_type", "template_id"), strict=True))










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
    if pep:  # the keys made for the PEP, and the keys delivered to it (USE_BY_PEPS)
        u = t.key_use.c
        conds.append(or_(k.pep_id == bindparam("pep"), exists().where(and_(
            u.key_id == k.id, u.endpoint_id == bindparam("pep"), u.endpoint_kind == "Pep"))))
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




def _subscription(row) -> Subscription:  # type: ignore[no-untyped-def]
    return Subscription(row.id, row.endpoint_id, row.notify_to, row.mode, row.update_type,
                        row.pep_id, row.expires_at, row.origin, row.end_to,
                        tuple(json.loads(row.realms)) if row.realms else ())
