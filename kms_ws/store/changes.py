"""The store-wide change sequence as GetUpdateList and WS-Enumeration read it: its high
water mark, key pages (keyset pagination), and removals of objects."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    DateTime,
    Select,
    String,
    and_,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    update,
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

# kms_meta: the newest change_seq of a removal pruned (store.changes.prune_removals)
PRUNED_THROUGH = "removals_pruned_through"


class SqlChanges(Part):
    """The change sequence in one unit of work (service.ports.Changes)."""

    def record_removal(self, kind: str, object_id: str, version: int,
                       realms: Sequence[str], now: datetime,
                       kept: Sequence[str] = ()) -> int:
        """Record that `object_id` of `kind` (last at `version`) was deleted, or left
        `realms` while staying in `kept`, at `now`; returns the removal's place on the
        change sequence. Readers with Read in `realms` and none in `kept` learn of it."""
        seq = self._next_change(kind, object_id, version + 1, now)
        self.conn.execute(t.removals.insert().values(
            change_seq=seq, kind=kind, object_id=object_id, removed_at=now))
        stays = set(kept)
        rows = [{"change_seq": seq, "realm": r, "kept": r in stays}
                for r in sorted(set(realms) | stays)]
        if rows:
            self.conn.execute(t.removal_realms.insert(), rows)
        return seq

    def record_lost_reads(self, endpoint_id: str, kinds: Sequence[str], lost: Sequence[str],
                          kept: Sequence[str], now: datetime) -> dict[str, int]:
        """The endpoint lost the Read right in `lost` and keeps it in `kept`: every key
        ("Key" among `kinds`), key template ("KeyTemplate") or administered object of the
        other `kinds` in one of `lost` and in none of `kept` is removed for this endpoint
        alone — one place on the change sequence each, a few set-based statements
        whatever their number. Returns the last place per kind."""
        before = self.high_water()
        c = t.changes.c
        for source in _in_realms(kinds, lost, kept):
            self.conn.execute(t.changes.insert().from_select(
                ["object_kind", "object_id", "version", "at"],
                source.add_columns(literal(now, DateTime))))
        new = select(c.seq, c.object_kind, c.object_id, c.at).where(c.seq > before)
        self.conn.execute(t.removals.insert().from_select(
            ["change_seq", "kind", "object_id", "removed_at"], new))
        self.conn.execute(t.removal_readers.insert().from_select(
            ["change_seq", "endpoint_id"],
            select(c.seq, literal(endpoint_id, t.GUID)).where(c.seq > before)))
        return {kind: int(last) for kind, last in self.conn.execute(
            select(c.object_kind, func.max(c.seq)).where(c.seq > before)
            .group_by(c.object_kind)).all()}

    def removal_page(self, kinds: Sequence[str], realms: Sequence[str], pos: int, high: int,
                     limit: int, reader: str | None = None,
                     pep_id: str | None = None) -> list[tuple[int, Removal]]:
        """Removals of objects of `kinds` that a reader with Read in `realms` (and, for
        removals of one reader, that is `reader`) could see and no longer sees, after `pos`
        up to `high`, in change order (keyset: change_seq > pos ... LIMIT n). pep_id:
        only of keys made for that PEP."""
        c = t.removals.c
        rows = self.conn.execute(select(c.change_seq, c.kind, c.object_id, c.removed_at)
                                 .where(and_(*_conditions(kinds, realms, pos, high, reader,
                                                          pep_id)))
                                 .order_by(c.change_seq).limit(limit)).all()
        return [(r.change_seq, Removal(r.kind, r.object_id, r.removed_at)) for r in rows]

    def count_removals(self, kinds: Sequence[str], realms: Sequence[str], pos: int,
                       high: int, reader: str | None = None,
                       pep_id: str | None = None) -> int:
        return int(self.conn.execute(select(func.count()).select_from(t.removals).where(
            and_(*_conditions(kinds, realms, pos, high, reader, pep_id)))).scalar_one())

    def prune_removals(self, before: datetime, limit: int) -> int:
        """Forget up to `limit` of the oldest removals made before `before`; the newest
        place forgotten is kept (removals_pruned_through). Returns how many went."""
        c = t.removals.c
        seqs = list(self.conn.execute(select(c.change_seq).where(c.removed_at < before)
                                      .order_by(c.change_seq).limit(limit)).scalars())
        if not seqs:
            return 0
        for table in (t.removal_realms, t.removal_readers, t.removals):
            self.conn.execute(delete(table).where(table.c.change_seq.in_(seqs)))
        through = max(max(seqs), self.removals_pruned_through())
        m = t.meta.c
        if not self.conn.execute(update(t.meta).where(m.name == PRUNED_THROUGH)
                                 .values(value=str(through))).rowcount:
            self.conn.execute(t.meta.insert().values(name=PRUNED_THROUGH, value=str(through)))
        return len(seqs)

    def oldest_removal(self) -> datetime | None:
        """When the oldest removal kept was made (None: none is kept): the first on the
        change sequence (its key; removals are made in time order)."""
        c = t.removals.c
        oldest: datetime | None = self.conn.execute(
            select(c.removed_at).order_by(c.change_seq).limit(1)).scalar_one_or_none()
        return oldest

    def removals_pruned_through(self) -> int:
        """The newest place on the change sequence whose removal was forgotten (0: none):
        a list from an older token may miss removals."""
        value = self.conn.execute(select(t.meta.c.value).where(
            t.meta.c.name == PRUNED_THROUGH)).scalar_one_or_none()
        return int(value) if value else 0

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


def _conditions(kinds: Sequence[str], realms: Sequence[str], pos: int, high: int,
                reader: str | None, pep_id: str | None) -> list:  # type: ignore[type-arg]
    c, r, o = t.removals.c, t.removal_realms.c, t.removal_readers.c
    seen = and_(
        exists().where(and_(r.change_seq == c.change_seq, r.realm.in_(list(realms)),
                            r.kept.is_(False))),
        ~exists().where(and_(r.change_seq == c.change_seq, r.realm.in_(list(realms)),
                             r.kept.is_(True))))
    if reader is not None:
        seen = or_(seen, exists().where(and_(o.change_seq == c.change_seq,
                                             o.endpoint_id == reader)))
    conds = [c.kind.in_(list(kinds)), c.change_seq > pos, c.change_seq <= high, seen]
    if pep_id is not None:
        k = t.keys.c
        conds.append(exists().where(and_(k.id == c.object_id, k.pep_id == pep_id)))
    return conds


def _in_realms(kinds: Sequence[str], lost: Sequence[str],
               kept: Sequence[str]) -> list[Select]:  # type: ignore[type-arg]
    """(kind, id, version) of the objects of `kinds` in one of `lost` and none of `kept`."""
    found: list[Select] = []  # type: ignore[type-arg]
    lost, kept = list(lost), list(kept)
    if "Key" in kinds:
        k, kr = t.keys.c, t.key_realms.c
        found.append(select(literal("Key", String(32)), k.id, k.version).where(
            exists().where(and_(kr.key_id == k.id, kr.realm.in_(lost))),
            ~exists().where(and_(kr.key_id == k.id, kr.realm.in_(kept)))).order_by(k.id))
    if "KeyTemplate" in kinds:
        tp, tr = t.templates.c, t.template_realms.c
        found.append(select(literal("KeyTemplate", String(32)), tp.id, tp.version).where(
            exists().where(and_(tr.template_id == tp.id, tr.realm.in_(lost))),
            ~exists().where(and_(tr.template_id == tp.id, tr.realm.in_(kept))))
            .order_by(tp.id))
    others = [kind for kind in kinds if kind not in ("Key", "KeyTemplate")]
    if others:
        ob, orr = t.objects.c, t.object_realms.c
        found.append(select(ob.kind, ob.id, ob.version).where(
            ob.kind.in_(others),
            exists().where(and_(orr.kind == ob.kind, orr.id == ob.id, orr.realm.in_(lost))),
            ~exists().where(and_(orr.kind == ob.kind, orr.id == ob.id,
                                 orr.realm.in_(kept)))).order_by(ob.kind, ob.id))
    return found
