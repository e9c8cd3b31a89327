"""Schema 17 and the deliverer's claim on a date-caused key transition (issue 15.4): two
nodes finding the same transition due announce it once, on SQLite and PostgreSQL; a store
made by schema 16 gets each key's next transition, a date already passed being due at
once (announced once after the upgrade). Each transition is one audit record, written by
the node that won the claim."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from kms_ws.audit.chain import AuditChain
from kms_ws.domain.model import Key, KeyState
from kms_ws.service import key_dates
from kms_ws.store import migrations
from kms_ws.store import tables as t
from kms_ws.store.engine import Database, sqlite_url
from kms_ws.store.unit_of_work import SqlUnitOfWork

from ..fakes.master_keys import keyring
from ..support.postgres import PostgresCluster

NOW = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
REALM = "realm://example.com/dates"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.create_database()


@pytest.fixture()
def store(url: str) -> Iterator[Database]:
    db = Database(url)
    db.migrate()
    yield _audited(db)
    db.dispose()


def _audited(db: Database) -> Database:
    """A migrated store with a master key and the audit signer a deliverer has (its
    records are chained)."""
    ring = keyring()
    with db.unit_of_work(write=True) as uow:
        uow.sealed.set_meta("master_key_current", ring.key_id)
    db.audit = AuditChain(ring)
    return db


def _audit_events(db: Database, key_id: str) -> list[str]:
    with db.transaction() as conn:
        return list(conn.execute(select(t.audit.c.event).where(
            t.audit.c.key_id == key_id).order_by(t.audit.c.id)).scalars())


def _key(**dates: datetime) -> Key:
    return Key(key_id=str(uuid.uuid4()), state=KeyState.ACTIVE,
               cipher_type="2.16.840.1.101.3.4.1.46", length_bits=256, version=1,
               edit_datetime=NOW - timedelta(hours=1), created_at=NOW - timedelta(hours=1),
               t_cached=0, realms=(REALM,), **dates)


def _insert(db: Database, *keys: Key) -> None:
    with db.transaction(write=True) as conn:
        for k in keys:
            SqlUnitOfWork(conn).keys.insert_key(k, b"x", "mk", None, k.created_at)


def _changes(db: Database, key_id: str) -> int:
    with db.transaction() as conn:
        return int(conn.execute(select(func.count()).select_from(t.changes).where(
            t.changes.c.object_id == key_id)).scalar_one())


def test_two_nodes_announce_a_due_transition_once(url: str, store: Database) -> None:
    """Both nodes' deliverers find the key's T_EXPIRED passed, at once, eight times over:
    exactly one change is recorded for each; a later pass (a restart) records none."""
    second = Database(url)
    second.audit = store.audit  # the other node: the same master key
    try:
        for _ in range(8):
            key = _key(t_expired=NOW - timedelta(minutes=1),
                       t_disabled=NOW + timedelta(days=1))
            _insert(store, key)
            start = threading.Barrier(2)
            counts: list[int] = []

            def announce(db: Database, start: threading.Barrier = start,
                         counts: list[int] = counts) -> None:
                start.wait()
                counts.append(key_dates.announce_due(db, NOW))

            threads = [threading.Thread(target=announce, args=(db,)) for db in (store, second)]
            for th in threads:
                th.start()
            for th in threads:
                th.join(30)
            assert sorted(counts) == [0, 1]
            assert _changes(store, key.key_id) == 2  # created, expired
            assert _audit_events(store, key.key_id) == ["KeyExpired"]
            assert key_dates.announce_due(second, NOW) == 0
            with store.transaction() as conn:  # the next one (T_DISABLED) is scheduled
                assert conn.execute(select(t.keys.c.next_transition_at).where(
                    t.keys.c.id == key.key_id)).scalar_one() == key.t_disabled
            # when T_DISABLED passes, one more change, once
            later = NOW + timedelta(days=1, seconds=1)
            assert key_dates.announce_due(store, later) == 1
            assert key_dates.announce_due(second, later) == 0
            assert _changes(store, key.key_id) == 3
            assert _audit_events(store, key.key_id) == ["KeyExpired", "KeyDisabled"]
            with store.transaction() as conn:
                assert conn.execute(select(t.keys.c.next_transition_at).where(
                    t.keys.c.id == key.key_id)).scalar_one() is None
    finally:
        second.dispose()


def test_a_schema_16_store_gets_each_keys_next_transition(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(sqlite_url(tmp_path))
    db.migrate()
    _audited(db)
    passed = _key(t_expired=NOW - timedelta(days=3))
    ahead = _key(t_expired=NOW + timedelta(days=3), t_disabled=NOW + timedelta(days=5))
    undated, disabled = _key(), _key(t_expired=NOW - timedelta(days=1))
    disabled.state = KeyState.DISABLED
    _insert(db, passed, ahead, undated, disabled)
    with db.transaction(write=True) as conn:  # as schema 16 left it
        conn.exec_driver_sql("DROP INDEX ix_keys_next_transition_at")
        conn.exec_driver_sql("ALTER TABLE keys DROP COLUMN next_transition_at")
        conn.execute(t.meta.update().where(t.meta.c.name == "schema_version").values(value="16"))
    assert db.migrate() == migrations.LATEST
    with db.transaction() as conn:
        due = dict(conn.execute(select(t.keys.c.id, t.keys.c.next_transition_at)).all())
    assert due == {passed.key_id: passed.t_expired, ahead.key_id: ahead.t_expired,
                   undated.key_id: None, disabled.key_id: None}
    assert key_dates.announce_due(db, NOW) == 1  # the date passed before the upgrade: once
    assert key_dates.announce_due(db, NOW) == 0
    assert _changes(db, passed.key_id) == 2
    db.dispose()


def test_both_dates_passed_while_no_one_looked_are_each_audited(store: Database) -> None:
    """The deliverer was down while T_EXPIRED and then T_DISABLED passed: its first pass
    records one change (the key is Disabled now) and audits both state changes, each a
    mandatory record, in the order they happened."""
    key = _key(t_expired=NOW - timedelta(minutes=50), t_disabled=NOW - timedelta(minutes=30))
    _insert(store, key)
    assert key_dates.announce_due(store, NOW) == 1  # one key announced
    assert _changes(store, key.key_id) == 2  # created, then its new state once
    assert _audit_events(store, key.key_id) == ["KeyExpired", "KeyDisabled"]
    assert key_dates.announce_due(store, NOW + timedelta(days=2)) == 0
    assert _audit_events(store, key.key_id) == ["KeyExpired", "KeyDisabled"]
