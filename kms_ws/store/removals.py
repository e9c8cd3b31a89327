"""Removals of objects of the custom update types (§6.12) and of key templates (mixed
into Repository): a deletion takes a place on the change sequence, in the deleting
transaction, with the realms the object was in (who may learn of it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, and_, exists, func, select

from ..domain.model import Removal
from . import tables as t


class RemovalQueries:
    conn: Connection

    def next_change(self, kind: str, object_id: str, version: int,
                    now: datetime) -> int:  # pragma: no cover - provided by Repository
        raise NotImplementedError

    def record_removal(self, kind: str, object_id: str, version: int,
                       realms: Sequence[str], now: datetime) -> int:
        """Record that `object_id` of `kind` (last at `version`, in `realms`) was deleted
        at `now`; returns the removal's place on the change sequence."""
        seq = self.next_change(kind, object_id, version + 1, now)
        self.conn.execute(t.removals.insert().values(
            change_seq=seq, kind=kind, object_id=object_id, removed_at=now))
        rows = [{"change_seq": seq, "realm": r} for r in sorted(set(realms))]
        if rows:
            self.conn.execute(t.removal_realms.insert(), rows)
        return seq

    def removal_page(self, kinds: Sequence[str], realms: Sequence[str], pos: int, high: int,
                     limit: int) -> list[tuple[int, Removal]]:
        """Removals of objects of `kinds` that were in any of `realms`, after `pos` up to
        `high`, in change order (keyset: change_seq > pos ... LIMIT n)."""
        c = t.removals.c
        rows = self.conn.execute(select(c.change_seq, c.kind, c.object_id, c.removed_at)
                                 .where(and_(*_conditions(kinds, realms, pos, high)))
                                 .order_by(c.change_seq).limit(limit)).all()
        return [(r.change_seq, Removal(r.kind, r.object_id, r.removed_at)) for r in rows]

    def count_removals(self, kinds: Sequence[str], realms: Sequence[str], pos: int,
                       high: int) -> int:
        return int(self.conn.execute(select(func.count()).select_from(t.removals).where(
            and_(*_conditions(kinds, realms, pos, high)))).scalar_one())


def _conditions(kinds: Sequence[str], realms: Sequence[str], pos: int,
                high: int) -> list:  # type: ignore[type-arg]
    c, r = t.removals.c, t.removal_realms.c
    return [c.kind.in_(list(kinds)), c.change_seq > pos, c.change_seq <= high,
            exists().where(and_(r.change_seq == c.change_seq, r.realm.in_(list(realms))))]
