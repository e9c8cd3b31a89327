"""Schema 13: every change to a table the endpoints cache derives from replaces the
endpoints generation in the same transaction (triggers, so no writer can forget it), and
the cache serves a unit of work only under the generation it read: read-only units of
work get the cached endpoint (as their own copy), writers always read the row."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from kms_ws.domain.model import ClientState, CredentialType, Endpoint, EndpointKind, NameValue
from kms_ws.domain.realms import ALL_RIGHTS
from kms_ws.domain.wrapping import WrappingKeyInfo, WrappingKeyKind
from kms_ws.store import tables as t
from kms_ws.store.engine import Database, sqlite_url
from kms_ws.store.generations import ENDPOINT_TABLES, ENDPOINTS

NOW = datetime.now(UTC).replace(tzinfo=None)
REALM = "realm://example.com/r"


def _generation(db: Database) -> str:
    with db.transaction() as conn:
        return str(conn.execute(select(t.meta.c.value).where(t.meta.c.name == ENDPOINTS))
                   .scalar_one())


def _endpoint(db: Database) -> str:
    ep = Endpoint(endpoint_id=str(uuid.uuid4()), kind=EndpointKind.CLIENT,
                  name=f"c-{uuid.uuid4().hex[:6]}", state=ClientState.ACTIVE,
                  credential_type=CredentialType.ASYMMETRIC_KEY, version=1,
                  grants={REALM: ALL_RIGHTS}, capabilities=("cap",),
                  attributes=(NameValue("a", "1"),), is_km_server=True)
    with db.unit_of_work(write=True) as uow:
        uow.endpoints.insert_endpoint(ep, NOW)
        uow.endpoints.insert_endpoint_credential(ep.endpoint_id, CredentialType.ASYMMETRIC_KEY,
                                                 certificate=b"der", cert_sha256=uuid.uuid4().hex)
        uow.endpoints.insert_wrapping_key(
            WrappingKeyInfo(ep.endpoint_id, "kek", WrappingKeyKind.SYMMETRIC, NOW, 1),
            b"sealed", "mk", None)
    return ep.endpoint_id


@pytest.fixture()
def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    db = Database(sqlite_url(tmp_path))
    db.migrate()
    yield db
    db.dispose()


def test_every_change_to_an_endpoint_table_replaces_the_generation(db: Database) -> None:
    before = _generation(db)
    endpoint_id = _endpoint(db)
    seen = {before, _generation(db)}
    assert len(seen) == 2  # inserting the endpoint and its rows changed it
    key = {"endpoints": "id"}
    for op in ("UPDATE", "DELETE"):
        for table in reversed(ENDPOINT_TABLES) if op == "DELETE" else ENDPOINT_TABLES:
            col = key.get(table, "endpoint_id")
            sql = (f"UPDATE {table} SET {col} = {col} WHERE {col} = ?" if op == "UPDATE"
                   else f"DELETE FROM {table} WHERE {col} = ?")
            with db.transaction(write=True) as conn:
                assert conn.exec_driver_sql(sql, (endpoint_id,)).rowcount >= 1, (op, table)
            now = _generation(db)
            assert now not in seen, f"{op} {table} left the endpoints generation as it was"
            seen.add(now)


def test_read_only_units_of_work_share_an_endpoint_writers_read_it(db: Database) -> None:
    endpoint_id = _endpoint(db)
    with db.unit_of_work(read_only=True) as uow:
        first = uow.endpoints.get_endpoint(endpoint_id)
        assert first is not None
        first.grants.clear()  # the caller's own copy
        first.state = ClientState.DISABLED
    # a change made outside the repository (another process, say) without the triggers
    # would go unseen by the cache: show that the cache is really used ...
    with db.transaction(write=True) as conn:
        conn.exec_driver_sql("DROP TRIGGER endpoints_update_generation")
        conn.exec_driver_sql("UPDATE endpoints SET name = 'renamed' WHERE id = ?",
                             (endpoint_id,))
    with db.unit_of_work(read_only=True) as uow:
        cached = uow.endpoints.get_endpoint(endpoint_id)
    assert cached is not None and cached.grants == {REALM: ALL_RIGHTS}
    assert cached.state is ClientState.ACTIVE and cached.name != "renamed"
    # ... that a writer reads the row itself ...
    with db.unit_of_work(write=True) as uow:
        fresh = uow.endpoints.get_endpoint(endpoint_id)
    assert fresh is not None and fresh.name == "renamed"
    # ... and that any other change, replacing the generation, is seen at once
    with db.unit_of_work(write=True) as uow:
        uow.endpoints.set_km_server(endpoint_id, False)
    with db.unit_of_work(read_only=True) as uow:
        after = uow.endpoints.get_endpoint(endpoint_id)
    assert after is not None and after.name == "renamed" and not after.is_km_server


def test_a_missing_trigger_is_made_again_at_the_next_start(db: Database) -> None:
    """A later migration rebuilding a table drops its triggers: every start (migrate)
    makes them again, so the endpoints cache keeps seeing every change."""
    endpoint_id = _endpoint(db)
    with db.transaction(write=True) as conn:
        conn.exec_driver_sql("DROP TRIGGER wrapping_keys_delete_generation")
    db.migrate()
    before = _generation(db)
    with db.unit_of_work(write=True) as uow:
        assert uow.endpoints.delete_wrapping_keys(endpoint_id, ["kek"]) == 1
    assert _generation(db) != before
