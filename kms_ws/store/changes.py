"""The store-wide change sequence as GetUpdateList and WS-Enumeration read it: its high
water mark, key pages (keyset pagination), and removals of objects."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    and_,
    exists,
    func,
    select,
)

from ..domain.model import (
    Key,
    Removal,
)
from ..domain.records import KeyScope
from . import tables as t
from .part import Part
from .updates import (
    MAX_SCAN,
    REALMS,
    SEQ,
    _high_water,
    _scope_params,
    _scope_stmt,
    keys_from_rows,
    readable,
)


class SqlChanges(Part):
    """The change sequence in one unit of work (service.ports.Changes)."""

    def record_removal(self, kind: str, object_id: str, version: int,
                       realms: Sequence[str], now: datetime) -> int:
        """Record that `object_id` of `kind` (last at `version`, in `realms`) was deleted
        at `now`; returns the removal's place on the change sequence."""
        seq = self._next_change(kind, object_id, version + 1, now)
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


def _conditions(kinds: Sequence[str], realms: Sequence[str], pos: int,
                high: int) -> list:  # type: ignore[type-arg]
    c, r = t.removals.c, t.removal_realms.c
    return [c.kind.in_(list(kinds)), c.change_seq > pos, c.change_seq <= high,
            exists().where(and_(r.change_seq == c.change_seq, r.realm.in_(list(realms))))]
