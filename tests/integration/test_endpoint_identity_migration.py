"""The store schema of the CIM identity (issue 15.13): a store made by the schema before
it upgrades with its endpoints intact (they presented no identity); afterwards an
identity is kept per endpoint, read back, and goes with the endpoint it belongs to."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect

from kms_ws.domain.model import ClientState, CredentialType, Endpoint, EndpointKind, NameValue
from kms_ws.store import migrations
from kms_ws.store.unit_of_work import SqlUnitOfWork

from ..support.migrated import store_before

NOW = datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _pep(name: str) -> Endpoint:
    return Endpoint(endpoint_id=str(uuid.uuid4()), kind=EndpointKind.PEP, name=name,
                    state=ClientState.ACTIVE, credential_type=CredentialType.USERNAME_PASSWORD,
                    version=1, realms=("realm://example.com/cim",))


def test_a_store_of_the_previous_schema_upgrades_and_keeps_identities(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    db = store_before(migrations._v20, tmp_path, monkeypatch)  # the previous release's
    old = _pep("made-before")
    with db.transaction(write=True) as conn:
        assert not inspect(conn).has_table("endpoint_identity")
        SqlUnitOfWork(conn).endpoints.insert_endpoint(old, NOW)

    assert db.migrate() == migrations.LATEST
    new = _pep("made-after")
    identity = (NameValue("PhysicalElement/Manufacturer", "Acme"),
                NameValue("SoftwareIdentity/VersionString", "2.1"))
    with db.transaction(write=True) as conn:
        uow = SqlUnitOfWork(conn)
        assert uow.endpoints.get_endpoint(old.endpoint_id) is not None
        assert uow.endpoints.cim_identity(old.endpoint_id) == ()
        uow.endpoints.insert_endpoint(new, NOW)
        uow.endpoints.set_cim_identity(new.endpoint_id, identity)
    with db.transaction(write=True) as conn:
        uow = SqlUnitOfWork(conn)
        assert uow.endpoints.cim_identity(new.endpoint_id) == identity
        uow.endpoints.delete_endpoint(new.endpoint_id)
    with db.transaction() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM endpoint_identity").scalar_one() == 0
    assert db.migrate() == migrations.LATEST  # nothing left to do
    db.dispose()
