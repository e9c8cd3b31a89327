"""Keys (§4.1): metadata, sealed values, realms, data-set bindings (§4.9), and who
used them (USE_BY_CLIENTS / USE_BY_PEPS)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    delete,
    exists,
    func,
    select,
    update,
)

from ..domain.lifecycle import next_transition
from ..domain.model import (
    DataSet,
    Key,
    NameValue,
)
from . import tables as t
from .part import Part
from .updates import DATASETS, facet_bits, join_realms, key_from_row


class SqlKeys(Part):
    """Keys in one unit of work (service.ports.Keys)."""

    def insert_key(self, key: Key, sealed: bytes, master_key_id: str, reported_by: str | None,
                   now: datetime) -> int:
        """Insert the key; returns its position on the change sequence."""
        seq = self._next_change("key", key.key_id, key.version, now)
        self.conn.execute(t.keys.insert().values(
            id=key.key_id, friendly_name=key.friendly_name, state=key.state.value,
            cipher_type=key.cipher_type, length_bits=key.length_bits, t_expired=key.t_expired,
            t_disabled=key.t_disabled, t_cached=key.t_cached, description=key.description,
            source_kind=key.source_kind.value, source_id=key.source_id,
            template_id=key.template_id, pep_id=key.pep_id, sealed_value=sealed,
            master_key_id=master_key_id, version=key.version, created_at=key.created_at,
            edit_datetime=key.edit_datetime, change_seq=seq, realms=join_realms(key.realms),
            facets=facet_bits(key), next_transition_at=next_transition(key, now)))
        self._insert_many(t.key_attributes, [{"key_id": key.key_id, "name": a.name,
                                              "value": a.value} for a in key.attributes])
        self._insert_many(t.key_realms, [{"key_id": key.key_id, "realm": r} for r in key.realms])
        self._set_extensions("Key", key.key_id, key.extensions)
        self.add_bindings(key.key_id, key.datasets, reported_by, now)
        return seq

    def add_bindings(self, key_id: str, datasets: Iterable[DataSet], reported_by: str | None,
                     now: datetime) -> None:
        rows = [{"key_id": key_id, "name": d.name, "value": d.value,
                 "sizeof_value": d.sizeof_value, "reported_by": reported_by, "at": now}
                for d in datasets]
        if rows:
            self._insert_many(t.dataset_bindings, rows)
            k = t.keys.c
            self.conn.execute(update(t.keys).where(k.id == key_id).values(
                facets=k.facets.bitwise_or(DATASETS)))

    def get_key(self, key_id: str) -> tuple[Key, bytes | None, str | None] | None:
        """The key's metadata, its sealed value and the id of the master key sealing it."""
        rows = self._run("key_by_id", {"id": key_id})
        if not rows:
            return None
        row = rows[0]
        return self._key(row), row.sealed_value, row.master_key_id

    def find_key_ids(self, realms: Sequence[str], *, limit: int,
                     friendly_name: str | None = None, attributes: Sequence[NameValue] = (),
                     datasets: Sequence[DataSet] = (), template_id: str | None = None,
                     altered_since: datetime | None = None,
                     order: str = "created") -> list[str]:
        """Ids of keys sharing a realm with `realms` and matching every given condition
        (attributes and data sets ANDed). order: created | newest | edited."""
        k = t.keys.c
        conds: list[ColumnElement[bool]] = [exists().where(and_(t.key_realms.c.key_id == k.id,
                                     t.key_realms.c.realm.in_(list(realms))))]
        if friendly_name is not None:
            conds.append(k.friendly_name == friendly_name)
        if template_id is not None:
            conds.append(k.template_id == template_id)
        if altered_since is not None:
            conds.append(k.edit_datetime > altered_since)
        a, b = t.key_attributes.c, t.dataset_bindings.c
        conds += [exists().where(and_(a.key_id == k.id, a.name == x.name, a.value == x.value))
                  for x in attributes]
        conds += [exists().where(and_(b.key_id == k.id, b.name == d.name, b.value == d.value))
                  for d in datasets]
        orders = {"created": (k.created_at, k.id), "newest": (k.created_at.desc(), k.id.desc()),
                  "edited": (k.edit_datetime, k.id)}
        q = select(k.id).where(and_(*conds)).order_by(*orders[order]).limit(limit)
        return list(self.conn.execute(q).scalars())

    def _key(self, row) -> Key:  # type: ignore[no-untyped-def]
        attrs, datasets, ext = [], [], []
        facets = self._run("key_facets", {"id": row.id}) if row.facets != 0 else ()
        for facet, name, value, size in facets:
            if facet == "a":
                attrs.append(NameValue(name, value))
            elif facet == "d":
                datasets.append(DataSet(name, value, size))
            else:
                ext.append((facet, name, value))
        return key_from_row(row, attrs, datasets, ext)

    def record_use(self, key_id: str, endpoint_id: str, endpoint_kind: str,
                   now: datetime) -> None:
        self._write("insert_key_use", {"key_id": key_id, "endpoint_id": endpoint_id,
                                       "endpoint_kind": endpoint_kind, "first_at": now})

    def use_by(self, key_id: str) -> list[tuple[str, str]]:
        u = t.key_use.c
        return [(r.endpoint_kind, r.endpoint_id) for r in self.conn.execute(
            select(u.endpoint_kind, u.endpoint_id).where(u.key_id == key_id)
            .order_by(u.first_at, u.endpoint_id)).all()]

    def bindings(self, realms: Sequence[str], *, key_id: str | None = None,
                 dataset: DataSet | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        b, r = t.dataset_bindings.c, t.key_realms.c
        q = select(b.key_id, b.name, b.value, b.reported_by, b.at).where(
            exists().where(and_(r.key_id == b.key_id, r.realm.in_(list(realms)))))
        if key_id is not None:
            q = q.where(b.key_id == key_id)
        if dataset is not None:
            q = q.where(and_(b.name == dataset.name, b.value == dataset.value))
        return [dict(r) for r in self.conn.execute(
            q.order_by(b.at.desc(), b.id.desc()).limit(limit)).mappings().all()]

    def has_binding(self, key_id: str, dataset: DataSet) -> bool:
        b = t.dataset_bindings.c
        return bool(self.conn.execute(select(exists().where(and_(
            b.key_id == key_id, b.name == dataset.name, b.value == dataset.value))))
            .scalar_one())

    def key_ids_of_template(self, template_id: str) -> list[str]:
        return list(self.conn.execute(select(t.keys.c.id).where(
            t.keys.c.template_id == template_id).order_by(t.keys.c.id)).scalars())

    def update_key(self, key: Key, sealed: bytes | None, erase: bool = False,
                   master_key_id: str | None = None) -> int:
        """Write a key's new state, dates, names and version; `sealed` re-seals the value
        under the new version with master key `master_key_id` (None with erase=True erases
        it: Destroyed). Returns the key's new position on the change sequence."""
        seq = self._next_change("key", key.key_id, key.version, key.edit_datetime)
        k = t.keys.c
        values: dict[str, Any] = dict(state=key.state.value, friendly_name=key.friendly_name,
                      t_expired=key.t_expired, t_disabled=key.t_disabled,
                      description=key.description, version=key.version,
                      edit_datetime=key.edit_datetime, change_seq=seq,
                      next_transition_at=next_transition(key, key.edit_datetime),
                      # attributes and extensions are replaced; data sets stay as they are
                      facets=k.facets.bitwise_and(DATASETS).bitwise_or(
                          facet_bits(key, datasets=False)))
        if sealed is not None or erase:
            values["sealed_value"] = sealed
            values["master_key_id"] = master_key_id if sealed is not None else None
        self.conn.execute(update(t.keys).where(t.keys.c.id == key.key_id).values(**values))
        self.conn.execute(delete(t.key_attributes).where(t.key_attributes.c.key_id == key.key_id))
        self._insert_many(t.key_attributes, [
            {"key_id": key.key_id, "name": a.name, "value": a.value} for a in key.attributes])
        self._set_extensions("Key", key.key_id, key.extensions)
        return seq

    def set_key_realms(self, key_id: str, realms: Sequence[str], version: int,
                       now: datetime) -> int:
        """Replace a key's realms: key_realms and keys.realms, together. The key takes a
        new place on the change sequence (returned); its VERSION and EDIT_DATETIME stay
        (§4.1: realm associations do not change versioning information)."""
        self.conn.execute(delete(t.key_realms).where(t.key_realms.c.key_id == key_id))
        self._insert_many(t.key_realms, [{"key_id": key_id, "realm": r}
                                         for r in sorted(set(realms))])
        seq = self._next_change("key", key_id, version, now)
        self.conn.execute(update(t.keys).where(t.keys.c.id == key_id).values(
            realms=join_realms(realms), change_seq=seq))
        return seq

    def due_transitions(self, now: datetime, limit: int = 100) -> list[tuple[str, datetime]]:
        """Keys whose next date-caused state change is due at `now`: (key id, its time),
        earliest first."""
        k = t.keys.c
        return [(r.id, r.next_transition_at) for r in self.conn.execute(
            select(k.id, k.next_transition_at).where(k.next_transition_at <= now)
            .order_by(k.next_transition_at, k.id).limit(limit)).all()]

    def claim_transition(self, key_id: str, due: datetime, following: datetime | None,
                         version: int, now: datetime) -> int | None:
        """Claim the key's transition due at `due` (one node wins: the UPDATE matches only
        while next_transition_at is still `due`), schedule the `following` one and give
        the key a new place on the change sequence (returned; None: claimed elsewhere, or
        the key changed meanwhile). VERSION and EDIT_DATETIME stay: the dates were in the
        key's attributes already."""
        k = t.keys.c
        won = self.conn.execute(update(t.keys).where(and_(
            k.id == key_id, k.next_transition_at == due)).values(
                next_transition_at=following)).rowcount
        if won != 1:
            return None
        seq = self._next_change("key", key_id, version, now)
        self.conn.execute(update(t.keys).where(k.id == key_id).values(change_seq=seq))
        return seq

    def list_key_ids(self, realms: Sequence[str], *, limit: int,
                     altered_since: datetime | None = None) -> list[str]:
        k = t.keys.c
        q = select(k.id).where(k.id.in_(select(t.key_realms.c.key_id).where(
            t.key_realms.c.realm.in_(list(realms)))))
        if altered_since is not None:
            q = q.where(k.edit_datetime > altered_since)
        return list(self.conn.execute(q.order_by(k.change_seq, k.id).limit(limit)).scalars())

    def count_by_state(self) -> dict[str, int]:
        c = t.keys.c
        return {state: int(n) for state, n in
                self.conn.execute(select(c.state, func.count()).group_by(c.state)).all()}
