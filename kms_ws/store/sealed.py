"""Store metadata and sealed material: the current master key, how many values each
master key seals, and re-sealing under a new one (service.rotation)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, select, update

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

    def sealed_not_under(self, master_key_id: str,
                         limit: int) -> list[tuple[str, Any, Any, str, bytes]]:
        """Up to `limit` sealed rows under another master key: (table, id, version/key id,
        master key id, sealed)."""
        out: list[tuple[str, Any, Any, str, bytes]] = []
        k = t.keys.c
        for r in self.conn.execute(select(k.id, k.version, k.master_key_id, k.sealed_value).where(
                and_(k.sealed_value.is_not(None), k.master_key_id != master_key_id))
                .limit(limit)).all():
            out.append(("key", r.id, r.version, r.master_key_id, r.sealed_value))
        w = t.wrapping_keys.c
        for r in self.conn.execute(select(w.endpoint_id, w.key_id, w.master_key_id,
                                          w.sealed_value).where(and_(
                w.sealed_value.is_not(None), w.master_key_id != master_key_id))
                .limit(max(0, limit - len(out)))).all():
            out.append(("kek", r.endpoint_id, r.key_id, r.master_key_id, r.sealed_value))
        e = t.endpoint_credentials.c
        for s in self.conn.execute(select(e.endpoint_id, e.master_key_id, e.sealed_secret).where(
                and_(e.sealed_secret.is_not(None), e.master_key_id != master_key_id))
                .limit(max(0, limit - len(out)))).all():
            out.append(("secret", s.endpoint_id, "", s.master_key_id, s.sealed_secret))
        a = t.audit_chain.c
        for s in self.conn.execute(select(a.name, a.master_key_id, a.sealed_key).where(
                and_(a.sealed_key.is_not(None), a.master_key_id != master_key_id))
                .limit(max(0, limit - len(out)))).all():
            out.append(("audit", s.name, "", s.master_key_id, s.sealed_key))
        return out

    def reseal_secret(self, endpoint_id: str, old_master: str, sealed: bytes,
                      new_master: str) -> bool:
        e = t.endpoint_credentials.c
        res = self.conn.execute(update(t.endpoint_credentials).where(and_(
            e.endpoint_id == endpoint_id, e.master_key_id == old_master))
            .values(sealed_secret=sealed, master_key_id=new_master))
        return res.rowcount == 1

    def reseal_key(self, key_id: str, version: int, old_master: str, sealed: bytes,
                   new_master: str) -> bool:
        k = t.keys.c
        res = self.conn.execute(update(t.keys).where(and_(
            k.id == key_id, k.version == version, k.master_key_id == old_master))
            .values(sealed_value=sealed, master_key_id=new_master))
        return res.rowcount == 1

    def reseal_kek(self, endpoint_id: str, key_id: str, old_master: str, sealed: bytes,
                   new_master: str) -> bool:
        w = t.wrapping_keys.c
        res = self.conn.execute(update(t.wrapping_keys).where(and_(
            w.endpoint_id == endpoint_id, w.key_id == key_id, w.master_key_id == old_master))
            .values(sealed_value=sealed, master_key_id=new_master))
        return res.rowcount == 1

    def reseal_audit_key(self, name: str, old_master: str, sealed: bytes,
                         new_master: str) -> bool:
        c = t.audit_chain.c
        res = self.conn.execute(t.audit_chain.update().where(and_(
            c.name == name, c.master_key_id == old_master))
            .values(sealed_key=sealed, master_key_id=new_master))
        return res.rowcount == 1
