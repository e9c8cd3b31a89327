"""Policies and the store on real SQLite and crypto, with a controllable clock: GetKey's
read-only unit of work and its recording transaction, and the migrations of 0.1 realm
memberships and of PEP credentials. (Policy decisions — assignment, retention, access,
re-sealing — are tested on the in-memory store: tests/handlers/test_policies.py.)"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime

import pytest
from sqlalchemy import create_engine, select

from kms_ws.app import init_data_dir
from kms_ws.config import Config
from kms_ws.crypto.passwords import hash_password
from kms_ws.domain.model import (
    AdminObject,
    ClientState,
    CredentialType,
    DataSet,
    Endpoint,
    EndpointKind,
    KeyUsage,
)
from kms_ws.domain.realms import ALL_RIGHTS, realm_object_id
from kms_ws.service import messages as m
from kms_ws.service.admin.messages import AdminRequest, Ref
from kms_ws.service.dispatch import KmsService
from kms_ws.store import migrations
from kms_ws.store import tables as t
from kms_ws.store.engine import Database

from ..support.clock import Clock

PASSWORD = "a-long-password"
DEFAULT = "realm://localhost/default"


@pytest.fixture()
def env(tmp_path):  # type: ignore[no-untyped-def]
    cfg = Config(data_dir=tmp_path / "d")
    cfg = dataclasses.replace(cfg, security=dataclasses.replace(
        cfg.security, allow_basic_over_http=True))  # in process: no network to cross
    db, mk = init_data_dir(cfg)
    clock = Clock()
    svc = KmsService(db, mk, cfg.security, clock)
    with db.unit_of_work(write=True) as uow:
        uow.objects.insert_object(_realm(clock.now))
        uow.endpoints.insert_endpoint(Endpoint(
            endpoint_id=str(uuid.uuid4()), kind=EndpointKind.CLIENT, name="root",
            state=ClientState.ACTIVE, credential_type=CredentialType.USERNAME_PASSWORD,
            version=1, realms=(DEFAULT,), is_admin=True,
            password_hash=hash_password(PASSWORD)), clock())
    yield svc, db, clock, mk
    db.dispose()


def _realm(now: datetime):  # type: ignore[no-untyped-def]
    return AdminObject("Realm", realm_object_id(DEFAULT), DEFAULT, None, 1, now, now, {},
                       (DEFAULT,))


def cred() -> m.Credential:
    return m.Credential(CredentialType.USERNAME_PASSWORD, username="root", password=PASSWORD)


def admin(svc: KmsService, action: str, kind: str, **kw):  # type: ignore[no-untyped-def]
    return svc.run("Admin" + action, cred(), AdminRequest(action, kind, **kw), "r")


def enforce(svc: KmsService, kind: str, pid: str, target: Ref) -> None:
    admin(svc, "Associate", kind, object_id=pid, target=target)
    doc = admin(svc, "Get", kind, object_id=pid).documents[0]
    admin(svc, "Edit", kind, document={**doc, "State": "Enforcing"})


def by_data(svc: KmsService, *pairs: tuple[str, str], usage: KeyUsage = KeyUsage.ENCRYPT):  # type: ignore[no-untyped-def]
    req = m.GetKeyRequest(datasets=tuple(DataSet(n, v) for n, v in pairs), usage=usage)
    return svc.run("GetKey", cred(), req, "r").keys[0]


def test_schema_2_keeps_0_1_realm_memberships_as_full_rights(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        t.meta.create(conn)
        migrations.MIGRATIONS[0](conn)
        conn.execute(t.meta.insert().values(name="schema_version", value="1"))
        now = datetime(2026, 1, 1)
        conn.execute(t.endpoints.insert().values(
            id="e1", kind="Client", name="old", state="Active", credential_type="Session",
            is_admin=False, failed_auth=0, version=1, created_at=now, edit_datetime=now,
            change_seq=0))
        conn.execute(t.endpoint_realms.insert().values(endpoint_id="e1",
                                                       realm="realm://old.example/r"))
    engine.dispose()
    db = Database(url)
    assert db.migrate() == migrations.LATEST
    with db.unit_of_work() as uow:
        ep = uow.endpoints.get_endpoint("e1")
        assert ep is not None and ep.grants == {"realm://old.example/r": ALL_RIGHTS}
        assert uow.objects.find_object("Realm", "realm://old.example/r") is not None
    db.dispose()


def test_schema_8_turns_a_peps_registered_credential_into_its_authentication_policy(
        tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A schema-7 store (no authentication_policy column): a PEP registered with a signing
    credential keeps asking for its proof; one registered without is served as before."""
    url = f"sqlite:///{tmp_path / 'seven.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        t.meta.create(conn)
        for migration in migrations.MIGRATIONS[:7]:
            migration(conn)
        conn.exec_driver_sql("ALTER TABLE endpoints DROP COLUMN authentication_policy")
        conn.execute(t.meta.insert().values(name="schema_version", value="7"))
        # as text, the way the store's DateTime columns hold it on SQLite (Python 3.12
        # deprecated sqlite3's implicit datetime adapter)
        now = datetime(2026, 1, 1).isoformat(" ")
        for pid, cred in (("p1", "SymmetricKey"), ("p2", "UsernamePassword"),
                          ("p3", "AsymmetricKey")):
            conn.exec_driver_sql(
                "INSERT INTO endpoints (id, kind, name, state, credential_type, is_admin, "
                "failed_auth, version, created_at, edit_datetime, change_seq) VALUES "
                "(?, 'Pep', ?, 'Active', ?, 0, 0, 1, ?, ?, 0)", (pid, pid, cred, now, now))
    engine.dispose()
    db = Database(url)
    assert db.migrate() == migrations.LATEST
    with db.unit_of_work() as uow:
        assert {p: uow.endpoints.get_endpoint(p).authentication_policy  # type: ignore[union-attr]
                for p in ("p1", "p2", "p3")} == {"p1": "SymmetricKey", "p2": "None",
                                                 "p3": "AsymmetricKey"}
    db.dispose()


def test_get_key_reads_first_and_records_after(env) -> None:  # type: ignore[no-untyped-def]
    """GetKey reads in a read-only unit of work and commits its delivery record after it;
    a GetKey that must create its key (assignment by data) runs again as one write
    transaction: the new key, its binding, its use and its audit record together."""
    svc, db, _, _ = env
    p = admin(svc, "Create", "KeyAssignmentPolicy", document={
        "Name": "per-tape", "Condition": [{"Name": "tape", "Value": "T1"}],
        "Generation": "PerDataSet"}).documents[0]
    enforce(svc, "KeyAssignmentPolicy", p["PolicyId"], Ref("Realm", DEFAULT))
    with (
        db.transaction(read_only=True) as conn,  # a read-only unit of work cannot write
        pytest.raises(Exception, match="readonly"),
    ):
        conn.execute(t.audit.delete())
    created = by_data(svc, ("tape", "T1"))
    again = svc.run("GetKey", cred(), m.GetKeyRequest(key_id=created.key_id), "r").keys[0]
    assert again.value == created.value
    with db.transaction() as conn:
        audits = conn.execute(select(t.audit.c.operation, t.audit.c.event, t.audit.c.result).where(
            t.audit.c.key_id == created.key_id)).all()
        uses = conn.execute(select(t.key_use).where(t.key_use.c.key_id == created.key_id)).all()
        bound = conn.execute(select(t.dataset_bindings).where(
            t.dataset_bindings.c.key_id == created.key_id)).all()
    assert sorted(a.event for a in audits) == ["KeyCreated", "KeyDelivered", "KeyDelivered"]
    assert len(uses) == 1 and len(bound) >= 1
