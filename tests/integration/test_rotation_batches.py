"""A master-key rotation's batches on a real SQLite store: the rotation holds the store's
one write lock only for its compare-and-set updates, never while it reads and re-seals
(requests that write, and every GetKey writes its delivery record, were starved: GetKey
p99 rose from ~12 ms idle to ~1 s during a rotation, bench/scale.py); what a request
changed between a batch's read and its write is left as the request left it; and each
batch reads on from the last instead of from the first row again."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from kms_ws.app import init_data_dir
from kms_ws.config import Config
from kms_ws.crypto import sealing
from kms_ws.crypto.master_key import Keyring
from kms_ws.domain.model import Key, KeyState
from kms_ws.service import rotation
from kms_ws.store.engine import Database

NOW = datetime(2026, 12, 7, 12, 0, 0)
REALM = "realm://localhost/default"


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[tuple[Database, Keyring, Path]]:
    data = tmp_path / "d"
    db, keyring = init_data_dir(Config(data_dir=data))
    yield db, keyring, data / "kms.db"
    db.dispose()


def _add_keys(db: Database, keyring: Keyring, n: int) -> dict[str, bytes]:
    values = {}
    with db.unit_of_work(write=True) as uow:
        current = uow.sealed.current_master_key_id()
        assert current is not None
        aead = keyring.aead_for(current)
        for i in range(n):
            key = Key(f"00000000-0000-4000-8000-{i:012d}", KeyState.ACTIVE, "AES-256", 256, 1,
                      NOW, NOW, 0, friendly_name=f"k{i}", realms=(REALM,))
            values[key.key_id] = os.urandom(32)
            uow.keys.insert_key(key, sealing.seal(aead, key.key_id, 1, values[key.key_id]),
                                current, None, NOW)
    return values


class _DuringSealing:
    """The new master key's AEAD, calling `hook` once before the first value is sealed
    under it: the moment between a batch's read and its write."""

    def __init__(self, aead: Any, hook: Any) -> None:
        self._aead, self._hook, self.calls = aead, hook, 0

    def encrypt(self, nonce: bytes, data: bytes, aad: bytes | None) -> bytes:
        self.calls += 1
        if self.calls == 1:
            self._hook()
        return self._aead.encrypt(nonce, data, aad)  # type: ignore[no-any-return]

    def decrypt(self, nonce: bytes, data: bytes, aad: bytes | None) -> bytes:
        return self._aead.decrypt(nonce, data, aad)  # type: ignore[no-any-return]


def _hook_new_key(keyring: Keyring, monkeypatch: pytest.MonkeyPatch, new: str,
                  hook: Any) -> _DuringSealing:
    wrapped = _DuringSealing(keyring.aead_for(new), hook)
    opened = keyring.aead_for

    def aead_for(master_key_id: str) -> Any:
        return wrapped if master_key_id == new else opened(master_key_id)

    monkeypatch.setattr(keyring, "aead_for", aead_for)
    return wrapped


def _opens_under_current(db: Database, keyring: Keyring, key_id: str, value: bytes) -> None:
    with db.unit_of_work() as uow:
        current = uow.sealed.current_master_key_id()
        assert current is not None
        found = uow.keys.get_key(key_id)
    assert found is not None, key_id
    key, sealed, master = found
    assert master == current and sealed is not None
    assert sealing.unseal(keyring.aead_for(master), key_id, key.version, sealed) == value


def test_the_store_takes_writes_while_a_batch_reseals(store, monkeypatch) -> None:
    db, keyring, path = store
    values = _add_keys(db, keyring, 5)
    new, _ = rotation.begin(db, keyring)
    writes: list[str] = []

    def write_meanwhile() -> None:  # another process, not waiting at all for the lock
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            writes.append("took the write lock")
        except sqlite3.OperationalError as exc:
            writes.append(str(exc))
        finally:
            other.close()

    sealer = _hook_new_key(keyring, monkeypatch, new, write_meanwhile)
    batch = rotation.reseal_batch(db, keyring, 100)
    assert sealer.calls >= 5
    assert writes == ["took the write lock"]
    assert batch.resealed == batch.looked_at >= 5  # the 5 keys and the audit chain's key
    for key_id, value in values.items():
        _opens_under_current(db, keyring, key_id, value)


def test_a_key_a_request_destroys_mid_batch_stays_destroyed(store, monkeypatch) -> None:
    db, keyring, _ = store
    values = _add_keys(db, keyring, 4)
    victim = sorted(values)[0]
    new, _ = rotation.begin(db, keyring)

    def destroy() -> None:  # as key_versions.touch_key erases a Destroyed key's value
        with db.unit_of_work(write=True) as uow:
            found = uow.keys.get_key(victim)
            assert found is not None
            key = found[0]
            key.state, key.version = KeyState.DESTROYED, key.version + 1
            uow.keys.update_key(key, None, erase=True)

    _hook_new_key(keyring, monkeypatch, new, destroy)
    batch = rotation.reseal_batch(db, keyring, 100)
    assert batch.resealed == batch.looked_at - 1
    with db.unit_of_work() as uow:
        found = uow.keys.get_key(victim)
    assert found is not None and found[0].state is KeyState.DESTROYED
    assert found[1] is None and found[2] is None  # not brought back by the rotation
    for key_id in sorted(values)[1:]:
        _opens_under_current(db, keyring, key_id, values[key_id])
    assert rotation.state(db).pending == 0
    assert rotation.finish(db, keyring) is not None


def test_batches_read_on_from_the_last_key(store) -> None:
    db, keyring, _ = store
    values = _add_keys(db, keyring, 10)
    rotation.begin(db, keyring)
    pending = rotation.state(db).pending
    assert pending == 10  # the keys (no audit record yet: the chain has no key yet)
    batches, after, seen = [], "", 0
    for _ in range(20):  # bounded: 3 a batch
        batch = rotation.reseal_batch(db, keyring, 3, after)
        if batch.looked_at == 0:
            break
        batches.append(batch)
        after, seen = batch.after_key, seen + batch.looked_at
    assert seen == pending  # each sealed row read once
    assert [b.looked_at for b in batches] == [3, 3, 3, 1]
    assert [b.after_key for b in batches] == [sorted(values)[i] for i in (2, 5, 8, 9)]
    for key_id, value in values.items():
        _opens_under_current(db, keyring, key_id, value)
    assert rotation.finish(db, keyring) is not None
