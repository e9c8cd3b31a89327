"""Store metadata and sealed material: the current master key, how many values each
master key seals, and re-sealing under a new one (service.rotation)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, func, literal, select, update

from . import tables as t
from .part import MASTER_KEY_CURRENT, Part


class SqlSealedValues(Part):
    """Sealed values and store metadata in one unit of work (service.ports.SealedValues)."""

    def get_meta(self, name: str) -> str | None:
        return self._meta(name)

    def set_meta(self, name: str, value: str) -> None:
        if self.get_meta(name) is None:
            self.conn.execute(t.meta.insert().values(name=name, value=value))
        else:
            self.conn.execute(update(t.meta).where(t.meta.c.name == name).values(value=value))

    def current_master_key_id(self) -> str | None:
        return self._meta(MASTER_KEY_CURRENT)

    def sealed_counts(self) -> dict[str, int]:
        """How many key values, KEKs, signing secrets and audit chain keys each master
        key seals."""
        counts: dict[str, int] = {}
        for table, col in ((t.keys, "sealed_value"), (t.wrapping_keys, "sealed_value"),
                           (t.endpoint_credentials, "sealed_secret"),
                           (t.audit_chain, "sealed_key")):
            c = table.c
            for mk, n in self.conn.execute(select(c.master_key_id, func.count()).where(
                    c[col].is_not(None)).group_by(c.master_key_id)).all():
                counts[mk] = counts.get(mk, 0) + n
        return counts

    def sealed_not_under(self, master_key_id: str, limit: int,
                         after_key: str = "") -> list[tuple[str, Any, Any, str, bytes]]:
        """Up to `limit` sealed rows under another master key: (table, id, version/key id,
        master key id, sealed). Key values come first, in key id order after `after_key`
        (a cursor: each batch reads on from the last, not from the start again); the
        wrapping keys, signing secrets and audit chain keys once no key value is left."""
        out: list[tuple[str, Any, Any, str, bytes]] = []
        k = t.keys.c
        for r in self.conn.execute(select(k.id, k.version, k.master_key_id, k.sealed_value).where(
                and_(k.id > after_key, k.sealed_value.is_not(None),
                     k.master_key_id != master_key_id))
                .order_by(k.id).limit(limit)).all():
            out.append(("key", r.id, r.version, r.master_key_id, r.sealed_value))
        w = t.wrapping_keys.c
        e = t.endpoint_credentials.c
        a = t.audit_chain.c
        for kind, query in (
                ("kek", select(w.endpoint_id, w.key_id, w.master_key_id, w.sealed_value)
                 .where(and_(w.sealed_value.is_not(None), w.master_key_id != master_key_id))),
                ("secret", select(e.endpoint_id, literal(""), e.master_key_id, e.sealed_secret)
                 .where(and_(e.sealed_secret.is_not(None), e.master_key_id != master_key_id))),
                ("audit", select(a.name, literal(""), a.master_key_id, a.sealed_key)
                 .where(and_(a.sealed_key.is_not(None), a.master_key_id != master_key_id)))):
            if len(out) >= limit:
                break
            out += [(kind, *r) for r in self.conn.execute(query.limit(limit - len(out)))]
        return out

    def reseal(self, rows: Sequence[tuple[tuple[str, Any, Any, str, bytes], bytes]],
               new_master: str) -> int:
        done = 0
        for kind, statement in _RESEAL.items():
            params = [{"a": a, "b": b, "old_master": old_master, "old_sealed": old_sealed,
                       "sealed": sealed, "new_master": new_master}
                      for (k, a, b, old_master, old_sealed), sealed in rows if k == kind]
            if params:  # one executemany: a statement built per row cost more than SQLite
                done += self.conn.execute(statement, params).rowcount
        return done


def _reseal_statement(table: Any, column: str, *match: str) -> Any:
    """UPDATE table SET column = :sealed, master_key_id = :new_master WHERE the row is
    the one read (`match` columns = :a, :b) and still holds what was read."""
    c = table.c
    keys = [c[name] == bindparam(param) for name, param in zip(match, "ab", strict=False)]
    return update(table).where(and_(
        *keys, c.master_key_id == bindparam("old_master"),
        c[column] == bindparam("old_sealed"))).values(
            {column: bindparam("sealed"), "master_key_id": bindparam("new_master")})


_RESEAL = {
    "key": _reseal_statement(t.keys, "sealed_value", "id", "version"),
    "kek": _reseal_statement(t.wrapping_keys, "sealed_value", "endpoint_id", "key_id"),
    "secret": _reseal_statement(t.endpoint_credentials, "sealed_secret", "endpoint_id"),
    "audit": _reseal_statement(t.audit_chain, "sealed_key", "name"),
}
