"""§6.11 fan-out into the outbox: one key change concerning more subscriptions than one
statement takes (store.subscriptions.CHUNK, store.endpoints.GRANTS_CHUNK) raises a
pending UpdatePending for exactly the subscribers with the Read right on the key, on
SQLite and PostgreSQL; a pending row already further along keeps its token, one behind
is raised, and both are due at once with their attempts reset."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from kms_ws.domain.model import ClientState, CredentialType, Endpoint, EndpointKind, Key, KeyState
from kms_ws.domain.realms import Right
from kms_ws.domain.records import Subscription
from kms_ws.service.notifications import notify_key
from kms_ws.store import tables as t
from kms_ws.store.endpoints import GRANTS_CHUNK
from kms_ws.store.engine import Database, sqlite_url
from kms_ws.store.subscriptions import CHUNK

from ..support.postgres import PostgresCluster

NOW = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
REALM, OTHER = "realm://example.com/fan-out", "realm://example.com/elsewhere"
READERS = 2 * max(CHUNK, GRANTS_CHUNK) + 7  # more than two statements' worth
RIGHTS: dict[str, dict[str, frozenset[Right]]] = {
    "reader": {REALM: frozenset({Right.READ})},
    "creator": {REALM: frozenset({Right.CREATE}), OTHER: frozenset({Right.READ})},
    "referrer": {REALM: frozenset({Right.REFERENCE})},
    "outsider": {OTHER: frozenset({Right.READ})},
}


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[Database]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
    else:
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        url = cluster.create_database()
    db = Database(url)
    db.migrate()
    yield db
    db.dispose()


def _subscribe(db: Database, kind: str, count: int) -> list[str]:
    """`count` clients with the rights of `kind`, each subscribed to key updates."""
    ids = []
    with db.unit_of_work(write=True) as uow:
        for i in range(count):
            ep = Endpoint(str(uuid.uuid4()), EndpointKind.CLIENT, f"{kind}-{i}",
                          ClientState.ACTIVE, CredentialType.USERNAME_PASSWORD, 1,
                          realms=tuple(RIGHTS[kind]), grants=RIGHTS[kind])
            uow.endpoints.insert_endpoint(ep, NOW)
            sub = Subscription(f"uuid:{uuid.uuid4()}", ep.endpoint_id,
                               f"http://127.0.0.1:9/{kind}/{i}", "PushWithAck", "Keys", None,
                               NOW + timedelta(days=1), "127.0.0.1", None, tuple(RIGHTS[kind]))
            uow.subscriptions.insert_subscription(sub, NOW)
            ids.append(sub.subscription_id)
    return ids


def _pending(db: Database) -> dict[str, tuple[int, int, datetime]]:
    p = t.pending_updates.c
    with db.transaction() as conn:
        return {r.subscription_id: (r.token, r.attempts, r.next_attempt_at) for r in
                conn.execute(select(p.subscription_id, p.token, p.attempts, p.next_attempt_at))}


def test_one_change_queues_every_reader_and_nobody_else(store: Database) -> None:
    readers = _subscribe(store, "reader", READERS)
    others = [s for kind in ("creator", "referrer", "outsider")
              for s in _subscribe(store, kind, 3)]
    ahead, behind = readers[0], readers[CHUNK]  # in different statements
    later = NOW + timedelta(hours=1)
    with store.unit_of_work(write=True) as uow:
        uow.subscriptions.raise_pending([ahead], 50, NOW)
        uow.subscriptions.raise_pending([behind], 3, NOW)
    with store.transaction(write=True) as conn:  # both backing off after failed attempts
        conn.execute(update(t.pending_updates).values(attempts=4, next_attempt_at=later))
    key = Key(key_id=str(uuid.uuid4()), state=KeyState.ACTIVE,
              cipher_type="2.16.840.1.101.3.4.1.46", length_bits=256, version=1,
              edit_datetime=NOW, created_at=NOW, t_cached=0, realms=(REALM,))
    with store.unit_of_work(write=True) as uow:
        notify_key(uow, key, 10, NOW)
    pending = _pending(store)
    assert set(pending) == set(readers) and not set(pending) & set(others)
    assert pending[ahead] == (50, 0, NOW) and pending[behind] == (10, 0, NOW)
    assert {v for s, v in pending.items() if s not in (ahead, behind)} == {(10, 0, NOW)}
    with store.unit_of_work() as uow:
        due = uow.subscriptions.due_pending(NOW, limit=READERS, exclude=[ahead])
    assert {p.subscription.subscription_id for p in due} == set(readers) - {ahead}
