"""Read-only peeks into a server's store, to prove what a request changed: its SQLite
file, or the PostgreSQL database its kms-ws.json names (queries take `?` parameters)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import psycopg


def database_url(data_dir: Path) -> str | None:
    """The database_url of the data directory's kms-ws.json (None: SQLite in it)."""
    path = data_dir / "kms-ws.json"
    return json.loads(path.read_text()).get("database_url") if path.exists() else None


def rows(data_dir: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple]:  # type: ignore[type-arg]
    """The rows a query finds in the store, read on a read-only connection."""
    url = database_url(data_dir)
    if url and url.startswith("postgresql"):
        with psycopg.connect(url.replace("+psycopg", "", 1)) as pg:
            pg.read_only = True
            return [tuple(r) for r in pg.execute(sql.replace("?", "%s"), params).fetchall()]
    con = sqlite3.connect(f"file:{data_dir / 'kms.db'}?mode=ro", uri=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def execute(data_dir: Path, *statements: str) -> None:
    """Change the store behind the server's back, as someone with access to its files or
    its database would (one transaction)."""
    url = database_url(data_dir)
    if url and url.startswith("postgresql"):
        with psycopg.connect(url.replace("+psycopg", "", 1)) as pg:
            for sql in statements:
                pg.execute(sql)
        return
    con = sqlite3.connect(data_dir / "kms.db", isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        for sql in statements:
            con.execute(sql)
        con.execute("COMMIT")
    finally:
        con.close()


def count(data_dir: Path, table: str, **equals: str) -> int:
    """Rows of `table` (whose columns equal `equals`, when given)."""
    where = " AND ".join(f"{column} = ?" for column in equals)
    return int(rows(data_dir, f"SELECT count(*) FROM {table}"  # noqa: S608
                    + (f" WHERE {where}" if where else ""), tuple(equals.values()))[0][0])


def snapshot(data_dir: Path) -> dict[str, int]:
    return {t: count(data_dir, t) for t in ("keys", "endpoints", "sessions", "dataset_bindings",
                                            "key_attributes", "changes")}


def sealed_value(data_dir: Path, key_id: str) -> bytes | None:
    found = rows(data_dir, "SELECT sealed_value FROM keys WHERE id = ?", (key_id,))
    return found[0][0] if found else None


def key_row_mismatches(data_dir: Path) -> list[str]:
    """Ids of keys whose own row disagrees with their facet tables: keys.realms with
    key_realms, keys.facets (1 attributes, 2 data sets, 4 extensions; NULL: not known,
    which is never wrong) with the tables holding rows of the key. The store writes both
    together, always."""
    index: dict[str, list[str]] = {}
    for kid, realm in rows(data_dir, "SELECT key_id, realm FROM key_realms ORDER BY realm"):
        index.setdefault(kid, []).append(realm)
    bits: dict[str, int] = {}
    for bit, sql in ((1, "SELECT DISTINCT key_id FROM key_attributes"),
                     (2, "SELECT DISTINCT key_id FROM dataset_bindings"),
                     (4, "SELECT DISTINCT owner_id FROM extensions WHERE owner_kind = 'Key'")):
        for (kid,) in rows(data_dir, sql):
            bits[kid] = bits.get(kid, 0) | bit
    return [kid for kid, column, facets in rows(data_dir, "SELECT id, realms, facets FROM keys")
            if (column.split("\n") if column else []) != index.get(kid, [])
            or (facets is not None and facets != bits.get(kid, 0))]
