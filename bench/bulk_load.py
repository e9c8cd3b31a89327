"""Benchmark-only bulk loader: N keys straight into a data directory's SQLite store.

BENCHMARK DATA ONLY. By default every key row shares ONE dummy sealed blob (not a sealed
key: it would fail its integrity check if anyone asked for a value) so that a million rows
load in seconds; enumeration (metadata) never reads it. With `seal` (bench/scale.py) each
row gets its own value sealed under the store's master key, so that a rotation, a GetKey
or a backup check opens it. Never point this at a real store."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

DUMMY_SEALED_BLOB = b"BENCHMARK-ONLY-DUMMY-SEALED-BLOB-NOT-A-KEY" + bytes(18)
AES_256_GCM = "2.16.840.1.101.3.4.1.46"


def load(data_dir: Path, n: int, realm: str, batch: int = 50_000,
         seal: Callable[[str], bytes] | None = None, master_key_id: str = "benchmark") -> None:
    """`seal(key_id)`: the key's sealed value (version 1) under `master_key_id`; None: the
    dummy blob."""
    con = sqlite3.connect(data_dir / "kms.db")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA journal_mode=WAL")
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    start = con.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]
    done = 0
    while done < n:
        m = min(batch, n - done)
        ids = [str(uuid.uuid4()) for _ in range(m)]
        seqs = range(start + done + 1, start + done + m + 1)
        con.executemany("INSERT INTO changes (seq, object_kind, object_id, version, at) "
                        "VALUES (?, 'key', ?, 1, ?)",
                        [(s, i, now) for s, i in zip(seqs, ids, strict=True)])
        con.executemany(
            "INSERT INTO keys (id, friendly_name, state, cipher_type, length_bits, t_cached, "
            "source_kind, sealed_value, master_key_id, version, created_at, edit_datetime, "
            "change_seq, realms, facets) "
            "VALUES (?, ?, 'Active', ?, 256, 3600, 'Kms', ?, ?, 1, ?, ?, ?, ?, 0)",
            [(i, f"bench-{s}", AES_256_GCM, DUMMY_SEALED_BLOB if seal is None else seal(i),
              master_key_id, now, now, s, realm)
             for s, i in zip(seqs, ids, strict=True)])
        con.executemany("INSERT INTO key_realms (key_id, realm) VALUES (?, ?)",
                        [(i, realm) for i in ids])
        con.commit()
        done += m
    con.close()
