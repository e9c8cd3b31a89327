"""Schema 21: who registered each wrapping key (§4.5 Reference, service.key_delivery). A
store of the previous schema upgrades with its wrapping keys intact and their registrant
unknown (they carry no Reference-only delivery: fail closed); afterwards the registrant
and whether it was an administrator are kept, read back, and a deleted registrant leaves
the key with no known registrant (never another endpoint's id)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect

from kms_ws.domain.model import ClientState, CredentialType, Endpoint, EndpointKind
from kms_ws.domain.wrapping import WrappingKeyInfo, WrappingKeyKind
from kms_ws.store import migrations
from kms_ws.store.unit_of_work import SqlUnitOfWork

from ..support.migrated import store_before

NOW = datetime.now(UTC).replace(tzinfo=None, microsecond=0)

# wrapping_keys as schemas 5 to 20 made it
PREVIOUS = """CREATE TABLE wrapping_keys (
    endpoint_id VARCHAR(36) NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    key_id VARCHAR(256) NOT NULL, kind VARCHAR(16) NOT NULL, sealed_value BLOB,
    master_key_id VARCHAR(36), certificate BLOB, not_after DATETIME,
    created_at DATETIME NOT NULL, ordinal INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, key_id))"""


def _endpoint(kind: EndpointKind, admin: bool = False) -> Endpoint:
    return Endpoint(endpoint_id=str(uuid.uuid4()), kind=kind, name=f"e-{uuid.uuid4().hex[:8]}",
                    state=ClientState.ACTIVE, credential_type=CredentialType.USERNAME_PASSWORD,
                    version=1, realms=("realm://example.com/w",), is_admin=admin)


def test_a_store_of_the_previous_schema_upgrades_with_registrants_unknown(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    db = store_before(migrations._v21, tmp_path, monkeypatch)  # the previous release's
    pep, client, admin = (_endpoint(EndpointKind.PEP), _endpoint(EndpointKind.CLIENT),
                          _endpoint(EndpointKind.CLIENT, admin=True))
    with db.transaction(write=True) as conn:
        conn.exec_driver_sql("DROP TABLE wrapping_keys")
        conn.exec_driver_sql(PREVIOUS)
        conn.exec_driver_sql("CREATE INDEX ix_wrapping_keys_master "
                             "ON wrapping_keys (master_key_id)")
        uow = SqlUnitOfWork(conn)
        for ep in (pep, client, admin):
            uow.endpoints.insert_endpoint(ep, NOW)
        conn.exec_driver_sql(
            "INSERT INTO wrapping_keys (endpoint_id, key_id, kind, sealed_value, "
            "master_key_id, created_at, ordinal) VALUES (?, 'old-kek', 'SymmetricKey', "
            "x'00', 'mk', ?, 1)",  # the time as SQLAlchemy stores it on SQLite (text)
            (pep.endpoint_id, NOW.strftime("%Y-%m-%d %H:%M:%S.%f")))

    assert db.migrate() == migrations.LATEST
    with db.transaction(write=True) as conn:
        assert {"registered_by", "registered_by_admin"} <= {
            c["name"] for c in inspect(conn).get_columns("wrapping_keys")}
        uow = SqlUnitOfWork(conn)
        [old] = uow.endpoints.wrapping_keys(pep.endpoint_id)
        assert old.key_id == "old-kek" and old.registered_by is None and not old.by_admin
        for n, (key_id, by) in enumerate((("by-client", client), ("by-admin", admin)), 2):
            uow.endpoints.insert_wrapping_key(
                WrappingKeyInfo(pep.endpoint_id, key_id, WrappingKeyKind.SYMMETRIC, NOW, n,
                                registered_by=by.endpoint_id, by_admin=by.is_admin),
                b"sealed", "mk", None)
    with db.transaction(write=True) as conn:
        uow = SqlUnitOfWork(conn)
        keys = {k.key_id: k for k in uow.endpoints.wrapping_keys(pep.endpoint_id)}
        assert (keys["by-client"].registered_by, keys["by-client"].by_admin) == (
            client.endpoint_id, False)
        assert (keys["by-admin"].registered_by, keys["by-admin"].by_admin) == (
            admin.endpoint_id, True)
        uow.endpoints.delete_endpoint(client.endpoint_id)
        uow.endpoints.delete_endpoint(admin.endpoint_id)
    with db.transaction() as conn:
        keys = {k.key_id: k for k in SqlUnitOfWork(conn).endpoints.wrapping_keys(
            pep.endpoint_id)}
    assert set(keys) == {"old-kek", "by-client", "by-admin"}  # the PEP keeps its keys
    assert keys["by-client"].registered_by is None and not keys["by-client"].by_admin
    assert keys["by-admin"].registered_by is None and keys["by-admin"].by_admin
    assert db.migrate() == migrations.LATEST  # nothing left to do
    db.dispose()
