"""Administered objects (policies, groups, realms, endpoint types), their realms and
policy associations: the objects repository."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    and_,
    delete,
    exists,
    func,
    select,
    tuple_,
    union_all,
    update,
)

from ..domain.model import (
    AdminObject,
)
from ..domain.records import KeySelection
from . import tables as t
from .generations import GenerationCache
from .part import Part

F = TypeVar("F", bound=Callable[..., Any])

# Administered objects and their associations change rarely and are read on every key
# delivery (groups, policies). Reads are served from a per-process cache tagged with the
# store's objects generation (store.generations). Results are handed out as copies:
# callers may change what they get.
_CACHE = GenerationCache()


def _cached(method: F) -> F:
    name = method.__name__

    @functools.wraps(method)
    def wrapper(self: SqlObjects, *args: Any, **kwargs: Any) -> Any:
        key = (name, args, tuple(sorted(kwargs.items())) if kwargs else ())
        try:
            hash(key)
        except TypeError:  # lists among the arguments
            key = (name, _freeze(args), tuple(sorted((k, _freeze(v))
                                                     for k, v in kwargs.items())))
        return _copy(_CACHE.lookup(self._generation(), key,
                                   lambda: method(self, *args, **kwargs)))
    return wrapper  # type: ignore[return-value]


def _freeze(value: Any) -> Any:
    """Arguments as hashable cache-key parts."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _copy(value: Any) -> Any:
    """The caller's own copy of a cached result (most often none or an empty list)."""
    if value is None:
        return None
    if isinstance(value, list) and not value:
        return []
    return copy.deepcopy(value)


class SqlObjects(Part):
    """Administered objects — policies, groups, realms, endpoint types — their realms and
    associations, in one unit of work (service.ports.Objects). Reads are cached per
    objects generation."""

    def insert_object(self, obj: AdminObject) -> int:
        """Returns the object's position on the change sequence."""
        self._bump_generation()
        seq = self._next_change(obj.kind, obj.object_id, obj.version, obj.edit_datetime)
        self.conn.execute(t.objects.insert().values(
            kind=obj.kind, id=obj.object_id, name=obj.name, state=obj.state,
            version=obj.version, created_at=obj.created_at, edit_datetime=obj.edit_datetime,
            change_seq=seq, body=json.dumps(obj.body, sort_keys=False)))
        self.set_object_realms(obj.kind, obj.object_id, obj.realms)
        return seq

    def update_object(self, obj: AdminObject) -> int:
        """Returns the object's new position on the change sequence."""
        self._bump_generation()
        seq = self._next_change(obj.kind, obj.object_id, obj.version, obj.edit_datetime)
        self.conn.execute(update(t.objects).where(and_(
            t.objects.c.kind == obj.kind, t.objects.c.id == obj.object_id)).values(
            name=obj.name, state=obj.state, version=obj.version,
            edit_datetime=obj.edit_datetime, change_seq=seq, body=json.dumps(obj.body)))
        return seq

    def delete_object(self, kind: str, object_id: str) -> None:
        self._bump_generation()
        o = t.objects.c
        self.conn.execute(delete(t.objects).where(and_(o.kind == kind, o.id == object_id)))
        self.conn.execute(delete(t.object_realms).where(and_(
            t.object_realms.c.kind == kind, t.object_realms.c.id == object_id)))
        self.drop_associations(kind, object_id)

    @_cached
    def get_object(self, kind: str, object_id: str) -> AdminObject | None:
        row = self.conn.execute(select(t.objects).where(and_(
            t.objects.c.kind == kind, t.objects.c.id == object_id))).first()
        return self._object(row) if row else None

    @_cached
    def find_object(self, kind: str, name: str) -> AdminObject | None:
        row = self.conn.execute(select(t.objects).where(and_(
            t.objects.c.kind == kind, t.objects.c.name == name))).first()
        return self._object(row) if row else None

    @_cached
    def list_objects(self, kind: str, realms: Sequence[str] | None, *, limit: int,
                     altered_since: datetime | None = None,
                     states: Sequence[str] = ()) -> list[AdminObject]:
        """Objects of a kind in any of `realms` (None: all), oldest change first."""
        o = t.objects.c
        q = select(t.objects).where(o.kind == kind)
        if realms is not None:
            r = t.object_realms.c
            q = q.where(exists().where(and_(r.kind == o.kind, r.id == o.id,
                                            r.realm.in_(list(realms)))))
        if altered_since is not None:
            q = q.where(o.edit_datetime > altered_since)
        if states:
            q = q.where(o.state.in_(list(states)))
        rows = self.conn.execute(q.order_by(o.change_seq, o.id).limit(limit)).all()
        return [self._object(r) for r in rows]

    def _object_conditions(self, kinds: Sequence[str], realms: Sequence[str], pos: int,
                           high: int) -> list:  # type: ignore[type-arg]
        o, r = t.objects.c, t.object_realms.c
        return [o.kind.in_(list(kinds)), o.change_seq > pos, o.change_seq <= high,
                exists().where(and_(r.kind == o.kind, r.id == o.id,
                                    r.realm.in_(list(realms))))]

    def object_page(self, kinds: Sequence[str], realms: Sequence[str], pos: int, high: int,
                    limit: int) -> list[tuple[int, AdminObject]]:
        """§6.12 custom update types: objects of `kinds` in any of `realms` changed after
        `pos` up to `high`, in change order (keyset: change_seq > pos ... LIMIT n)."""
        rows = self.conn.execute(select(t.objects).where(and_(*self._object_conditions(
            kinds, realms, pos, high))).order_by(t.objects.c.change_seq).limit(limit)).all()
        return [(row.change_seq, self._object(row)) for row in rows]

    def count_objects(self, kinds: Sequence[str], realms: Sequence[str], pos: int,
                      high: int) -> int:
        return int(self.conn.execute(select(func.count()).select_from(t.objects).where(
            and_(*self._object_conditions(kinds, realms, pos, high)))).scalar_one())

    def set_object_realms(self, kind: str, object_id: str, realms: Iterable[str]) -> None:
        self._bump_generation()
        r = t.object_realms.c
        self.conn.execute(delete(t.object_realms).where(and_(r.kind == kind,
                                                             r.id == object_id)))
        self._insert_many(t.object_realms, [{"kind": kind, "id": object_id, "realm": realm}
                                            for realm in sorted(set(realms))])

    def _object(self, row) -> AdminObject:  # type: ignore[no-untyped-def]
        realms = self.conn.execute(select(t.object_realms.c.realm).where(and_(
            t.object_realms.c.kind == row.kind, t.object_realms.c.id == row.id))
            .order_by(t.object_realms.c.realm)).scalars()
        return AdminObject(row.kind, row.id, row.name, row.state, row.version, row.created_at,
                           row.edit_datetime, json.loads(row.body), tuple(realms))

    def associate(self, kind: str, object_id: str, target_kind: str, target_id: str) -> bool:
        if self.is_associated(kind, object_id, target_kind, target_id):
            return False
        self._bump_generation()
        self.conn.execute(t.associations.insert().values(
            kind=kind, id=object_id, target_kind=target_kind, target_id=target_id))
        return True

    def disassociate(self, kind: str, object_id: str, target_kind: str, target_id: str) -> bool:
        a = t.associations.c
        res = self.conn.execute(delete(t.associations).where(and_(
            a.kind == kind, a.id == object_id, a.target_kind == target_kind,
            a.target_id == target_id)))
        if res.rowcount:
            self._bump_generation()
        return bool(res.rowcount)

    @_cached
    def is_associated(self, kind: str, object_id: str, target_kind: str, target_id: str) -> bool:
        a = t.associations.c
        return bool(self.conn.execute(select(exists().where(and_(
            a.kind == kind, a.id == object_id, a.target_kind == target_kind,
            a.target_id == target_id)))).scalar_one())

    @_cached
    def targets_of(self, kind: str, object_id: str) -> list[tuple[str, str]]:
        a = t.associations.c
        return [(r.target_kind, r.target_id) for r in self.conn.execute(
            select(a.target_kind, a.target_id).where(and_(a.kind == kind, a.id == object_id))
            .order_by(a.target_kind, a.target_id)).all()]

    @_cached
    def sources_of(self, target_kind: str, target_id: str,
                   kinds: Sequence[str] = ()) -> list[tuple[str, str]]:
        a = t.associations.c
        q = select(a.kind, a.id).where(and_(a.target_kind == target_kind,
                                            a.target_id == target_id))
        if kinds:
            q = q.where(a.kind.in_(list(kinds)))
        return [(r.kind, r.id) for r in self.conn.execute(q.order_by(a.kind, a.id)).all()]

    def newest_assigned_key(self, policy_id: str) -> str | None:
        """The newest key a key-assignment policy created (its pool key)."""
        a, k = t.associations.c, t.keys.c
        return self.conn.execute(select(k.id).join(t.associations, and_(
            a.target_kind == "Key", a.target_id == k.id)).where(and_(
                a.kind == "KeyAssignmentPolicy", a.id == policy_id))
            .order_by(k.created_at.desc(), k.id).limit(1)).scalar()

    def drop_associations(self, kind: str, object_id: str) -> None:
        self._bump_generation()
        a = t.associations.c
        self.conn.execute(delete(t.associations).where(
            (and_(a.kind == kind, a.id == object_id))
            | (and_(a.target_kind == kind, a.target_id == object_id))))

    @_cached
    def enforcing_policies_for(self, targets: Sequence[tuple[str, str]]) -> list[
            tuple[AdminObject, str, str]]:
        """Enforcing policies associated with any of `targets`, with the target."""
        if not targets:
            return []
        a, o = t.associations.c, t.objects.c
        rows = self.conn.execute(
            select(t.objects, a.target_kind, a.target_id)
            .join(t.associations, and_(a.kind == o.kind, a.id == o.id))
            .where(and_(tuple_(a.target_kind, a.target_id).in_(list(targets)),
                        o.state == "Enforcing"))
            .order_by(o.kind, o.id)).all()
        return [(self._object(r), r.target_kind, r.target_id) for r in rows]

    @_cached
    def enforcing_targets(self, kind: str, target_kind: str) -> list[tuple[AdminObject, str]]:
        """Enforcing policies of `kind` associated with objects of `target_kind` (groups,
        templates: few), with the target's id."""
        a, o = t.associations.c, t.objects.c
        rows = self.conn.execute(
            select(t.objects, a.target_id)
            .join(t.associations, and_(a.kind == o.kind, a.id == o.id))
            .where(and_(o.kind == kind, o.state == "Enforcing", a.target_kind == target_kind))
            .order_by(a.target_id)).all()
        return [(self._object(r), r.target_id) for r in rows]

    def policies_on_keys(self, kind: str, keys: KeySelection
                         ) -> list[tuple[str, dict[str, Any], str, str]]:
        """(policy id, body, target kind, target id) of the Enforcing policies of `kind`
        associated with the selected keys or their templates: one query, whatever the
        number of keys (bodies only: no per-row realm look-up)."""
        a, o = t.associations.c, t.objects.c
        ids, templates = _selected(keys)
        # Driven from the keys' side (ix_associations_target), one branch per target kind.
        rows = self.conn.execute(union_all(*(
            select(o.id, o.body, a.target_kind, a.target_id)
            .join(t.associations, and_(a.kind == o.kind, a.id == o.id))
            .where(and_(a.target_kind == target_kind, a.target_id.in_(targets),
                        o.kind == kind, o.state == "Enforcing"))
            for target_kind, targets in (("Key", ids), ("KeyTemplate", templates))))).all()
        bodies: dict[str, dict[str, Any]] = {}
        for r in rows:
            if r.id not in bodies:
                bodies[r.id] = json.loads(r.body)
        return [(r.id, bodies[r.id], r.target_kind, r.target_id) for r in rows]

    def key_members_among(self, group_ids: Sequence[str],
                          keys: KeySelection) -> list[tuple[str, str]]:
        """(key group id, key id): static memberships of these groups among the keys."""
        if not group_ids:
            return []
        a = t.associations.c
        return [(r.id, r.target_id) for r in self.conn.execute(
            select(a.id, a.target_id).where(and_(
                a.kind == "KeyGroup", a.id.in_(list(group_ids)), a.target_kind == "Key",
                a.target_id.in_(_selected(keys)[0])))).all()]

    @_cached
    def dynamic_groups(self, kind: str) -> list[AdminObject]:
        """Dynamic groups of a kind (without realms: membership rules only)."""
        o = t.objects.c
        rows = self.conn.execute(select(t.objects).where(and_(
            o.kind == kind, o.body.like('%"Type": "Dynamic"%'))).order_by(o.id)).all()
        return [AdminObject(r.kind, r.id, r.name, r.state, r.version, r.created_at,
                            r.edit_datetime, json.loads(r.body)) for r in rows]





def _selected(keys: KeySelection) -> tuple[Any, Any]:
    """(key ids, their template ids) as sub-selects: a range binds two values, not one
    per key."""
    k = t.keys.c
    if isinstance(keys, tuple) and len(keys) == 2 and all(isinstance(v, int) for v in keys):
        cond = k.change_seq.between(keys[0], keys[1])
        return select(k.id).where(cond), select(k.template_id).where(cond)
    ids = list(keys)
    return ids, select(k.template_id).where(k.id.in_(ids))
