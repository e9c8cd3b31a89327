"""Reports an administrator reviews, read straight from the store (offline commands).

spread_keys: keys in more than one realm. Until issue 12.1 a new key went into every
realm where its creator held Create, so an administrator who had added a realm, or any
client with Create in two realms, shared each key it made with the other realm's
members. Each key is listed with its realms, when it was made and who made it (the
creation's audit record), so an administrator can decide which realms it belongs in
(`kms-ws admin key disassociate KEY --realm R`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, or_, select

from . import tables as t

# The audit records of a key's creation: CreateKey, StoreKey, WS-Transfer Create, and
# GetKey by data through a key-assignment policy (event KeyCreated).
_MADE_BY = ("CreateKey", "StoreKey", "Transfer.Create")


def spread_keys(conn: Connection) -> list[dict[str, Any]]:
    """Keys in more than one realm, oldest first: id, friendly name, state, created_at,
    realms, source, template, and the creator (actor id and name, operation) when the
    audit trail holds the creation."""
    r = t.key_realms.c
    spread = select(r.key_id).group_by(r.key_id).having(func.count() > 1).subquery()
    k = t.keys.c
    keys = conn.execute(select(k.id, k.friendly_name, k.state, k.created_at, k.source_kind,
                               k.source_id, k.template_id)
                        .where(k.id.in_(select(spread.c.key_id)))
                        .order_by(k.created_at, k.id)).all()
    if not keys:
        return []
    ids = [row.id for row in keys]
    realms: dict[str, list[str]] = {}
    for key_id, realm in conn.execute(select(r.key_id, r.realm).where(r.key_id.in_(ids))
                                      .order_by(r.realm)):
        realms.setdefault(key_id, []).append(realm)
    a = t.audit.c
    first = select(func.min(a.id)).where(
        a.key_id.in_(ids), a.result == "Success",
        or_(a.operation.in_(_MADE_BY), a.event == "KeyCreated")).group_by(a.key_id)
    made = {row.key_id: row for row in conn.execute(
        select(a.key_id, a.actor_id, a.actor_name, a.operation, a.at).where(a.id.in_(first)))}
    out = []
    for row in keys:
        by = made.get(row.id)
        out.append({
            "key_id": row.id, "friendly_name": row.friendly_name, "state": row.state,
            "created_at": row.created_at, "realms": realms.get(row.id, []),
            "source": {"kind": row.source_kind, "id": row.source_id},
            "template_id": row.template_id,
            "created_by": {"id": by.actor_id, "name": by.actor_name,
                           "operation": by.operation} if by is not None else None})
    return out
