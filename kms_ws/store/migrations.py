"""Schema migrations. The store records its schema version in kms_meta; each migration
moves it one step and runs in one transaction. Never edit a released migration: add one.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, select

from . import tables as t

Migration = Callable[[Connection], None]


def _v1(conn: Connection) -> None:
    """Release 0.1: endpoints, sessions, templates, keys, data-set bindings, audit."""
    t.metadata.create_all(conn, tables=[
        t.changes, t.endpoints, t.endpoint_realms, t.endpoint_capabilities,
        t.endpoint_attributes, t.sessions, t.templates, t.template_attributes,
        t.template_realms, t.keys, t.key_attributes, t.key_realms, t.dataset_bindings,
        t.audit,
    ])


MIGRATIONS: tuple[Migration, ...] = (_v1,)
LATEST = len(MIGRATIONS)


def current_version(conn: Connection) -> int:
    t.meta.create(conn, checkfirst=True)
    row = conn.execute(select(t.meta.c.value).where(t.meta.c.name == "schema_version")).first()
    return int(row[0]) if row else 0


def upgrade(conn: Connection) -> int:
    """Apply every pending migration; returns the resulting version."""
    version = current_version(conn)
    if version > LATEST:
        raise RuntimeError(f"store schema {version} is newer than this kms-ws ({LATEST})")
    for number in range(version + 1, LATEST + 1):
        MIGRATIONS[number - 1](conn)
        if number == 1:
            conn.execute(t.meta.insert().values(name="schema_version", value="1"))
        else:
            conn.execute(t.meta.update().where(t.meta.c.name == "schema_version")
                         .values(value=str(number)))
    return LATEST
