"""The SQLite side of `kms-ws backup` and `restore` (kms_ws/backup.py): a consistent copy
of a live database through SQLite's online backup API, its integrity check, what it
records (schema version, the master keys its sealed values need), and every sealed value
in it, read as a stream for the restore's check that the master key opens each one.

The online backup copies the database's pages inside one read transaction of the source
(in WAL mode readers never block the server's writers, nor the writers it): the copy is
the database as of one commit, every acknowledged write before it included. A copy of
the file itself could catch a half-written page or miss what is still in the -wal file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select

from . import migrations
from . import tables as t
from .unit_of_work import SqlUnitOfWork


def snapshot(source: str, dest: Path) -> None:
    """Copy the live SQLite database `source` into the new file `dest` (online backup, one
    step: one snapshot of the source), then make the copy a self-contained rollback-journal
    database (no -wal beside it)."""
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(dest)) as dst:
        src.execute("PRAGMA query_only=ON")
        src.execute("PRAGMA busy_timeout=15000")
        src.backup(dst, pages=-1)
        dst.execute("PRAGMA journal_mode=DELETE")


def integrity_problems(path: Path) -> list[str]:
    """SQLite's integrity_check of the database file `path`: [] when it is sound."""
    try:
        with closing(sqlite3.connect(path)) as conn:
            rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    return [] if rows == ["ok"] else rows


@dataclass(frozen=True)
class StoreFacts:
    schema_version: int
    current_master_key: str | None
    sealed_counts: dict[str, int]  # sealed values by the master key sealing them

    @property
    def master_keys(self) -> list[str]:
        """Every master key something in the store needs (the current one included)."""
        ids = set(self.sealed_counts)
        if self.current_master_key:
            ids.add(self.current_master_key)
        return sorted(ids)


def facts(path: Path) -> StoreFacts:
    """What the SQLite database file `path` records, read without changing it."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            version = migrations.stored_version(conn)
            if version == 0:
                return StoreFacts(0, None, {})
            sealed = SqlUnitOfWork(conn).sealed
            return StoreFacts(version, sealed.current_master_key_id(), sealed.sealed_counts())
    finally:
        engine.dispose()


SealedRow = tuple[str, Any, Any, str, bytes]  # (kind, id, version or key id, master key, sealed)


def sealed_rows(path: Path) -> Iterator[SealedRow]:
    """Every sealed value of the database file `path`, as service.rotation names them:
    ("key", key id, version | "kek", endpoint, wrapping key id | "secret", endpoint, "" |
    "audit", chain, "", master key id, sealed bytes), streamed."""
    engine = create_engine(f"sqlite:///{path}")
    k, w = t.keys.c, t.wrapping_keys.c
    e, a = t.endpoint_credentials.c, t.audit_chain.c
    queries: list[tuple[str, Any]] = [
        ("key", select(k.id, k.version, k.master_key_id, k.sealed_value)
         .where(k.sealed_value.is_not(None))),
        ("kek", select(w.endpoint_id, w.key_id, w.master_key_id, w.sealed_value)
         .where(w.sealed_value.is_not(None))),
        ("secret", select(e.endpoint_id, e.endpoint_id, e.master_key_id, e.sealed_secret)
         .where(e.sealed_secret.is_not(None))),
        ("audit", select(a.name, a.name, a.master_key_id, a.sealed_key)
         .where(a.sealed_key.is_not(None))),
    ]
    try:
        with engine.connect() as conn:
            for kind, query in queries:
                for one, two, mk, sealed in conn.execution_options(
                        stream_results=True).execute(query):
                    yield kind, one, two if kind in ("key", "kek") else "", mk, bytes(sealed)
    finally:
        engine.dispose()
