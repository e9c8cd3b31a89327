"""What every repository of a unit of work is built on: its connection, the prepared
hot-path statements, the store generations it shares with the unit's other repositories
(store.generations), and the few writes several aggregates make (a place on the change
sequence, vendor and application extensions)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, and_, delete, select

from ..domain.model import Extensions
from . import tables as t
from .generations import Generations, UnitState
from .statements import prepared
from .updates import extensions_from

MASTER_KEY_CURRENT = "master_key_current"  # kms_meta: the master key sealing new values


class Part(Generations):
    """One repository (an aggregate's queries) of one unit of work."""

    def __init__(self, conn: Connection, state: UnitState) -> None:
        self.conn = conn
        self.state = state

    def _run(self, name: str, params: dict[str, Any]) -> list[Any]:
        """Run one of the prepared hot-path statements (store.statements)."""
        keys = tuple(params) if name.startswith("insert_") else None
        return prepared(name, self.conn.dialect, keys).run(self.conn, params)

    def _write(self, name: str, params: dict[str, Any]) -> int:
        """Run a prepared data change; the number of rows it changed."""
        keys = tuple(params) if name.startswith("insert_") else None
        return prepared(name, self.conn.dialect, keys).write(self.conn, params)

    def _insert_many(self, table: Table, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.conn.execute(table.insert(), rows)

    def _meta(self, name: str) -> str | None:
        rows = self._run("meta", {"name": name})  # every request: the current master key
        return rows[0][0] if rows else None

    def _next_change(self, kind: str, object_id: str, version: int, now: datetime) -> int:
        """A new place on the store-wide change sequence for this change."""
        res = self.conn.execute(t.changes.insert().values(
            object_kind=kind, object_id=object_id, version=version, at=now))
        assert res.inserted_primary_key is not None  # an INSERT of one row
        return int(res.inserted_primary_key[0])

    def _set_extensions(self, owner_kind: str, owner_id: str, ext: Extensions) -> None:
        """Replace the owner's vendor ("v") and application ("p") extensions."""
        x = t.extensions.c
        self.conn.execute(delete(t.extensions).where(and_(x.owner_kind == owner_kind,
                                                          x.owner_id == owner_id)))
        self._insert_many(t.extensions, [
            {"owner_kind": owner_kind, "owner_id": owner_id, "section": sec, "name": a.name,
             "value": a.value}
            for sec, values in (("v", ext.vendor), ("p", ext.application)) for a in values])

    def _get_extensions(self, owner_kind: str, owner_id: str) -> Extensions:
        x = t.extensions.c
        rows = self.conn.execute(select(x.section, x.name, x.value).where(and_(
            x.owner_kind == owner_kind, x.owner_id == owner_id)).order_by(x.name)).all()
        return extensions_from(rows)
