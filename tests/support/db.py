"""Read-only peeks into a server's SQLite store, to prove what a request changed."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def count(data_dir: Path, table: str) -> int:
    con = sqlite3.connect(f"file:{data_dir / 'kms.db'}?mode=ro", uri=True)
    try:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
    finally:
        con.close()


def snapshot(data_dir: Path) -> dict[str, int]:
    return {t: count(data_dir, t) for t in ("keys", "endpoints", "sessions", "dataset_bindings",
                                            "key_attributes", "changes")}
