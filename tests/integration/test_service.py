"""Service handlers over a real SQLite store, real crypto and a controllable clock."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from kms_ws.app import init_data_dir
from kms_ws.config import Config
from kms_ws.crypto.passwords import hash_password
from kms_ws.domain.errors import InternalError, InvalidCredentials, KeyNotUsable, NotFound
from kms_ws.domain.model import ClientState, CredentialType, Endpoint, EndpointKind, KeyUsage
from kms_ws.service import messages as m
from kms_ws.service.dispatch import KmsService
from kms_ws.store import migrations
from kms_ws.store import tables as t

from ..support.clock import Clock

PASSWORD = "a-long-password"


@pytest.fixture()
def env(tmp_path):  # type: ignore[no-untyped-def]
    cfg = Config(data_dir=tmp_path / "d")
    cfg = dataclasses.replace(cfg, security=dataclasses.replace(
        cfg.security, lock_after_failed_authentications=3, session_ttl_seconds=60,
        allow_basic_over_http=True))  # in process: the passwords cross no network
    db, mk = init_data_dir(cfg)
    clock = Clock()
    svc = KmsService(db, mk, cfg.security, clock)
    with db.unit_of_work(write=True) as uow:
        uow.endpoints.insert_endpoint(Endpoint(
            endpoint_id=str(uuid.uuid4()), kind=EndpointKind.CLIENT, name="alice",
            state=ClientState.ACTIVE, credential_type=CredentialType.USERNAME_PASSWORD,
            version=1, realms=("realm://localhost/default",),
            password_hash=hash_password(PASSWORD)), clock())
    yield svc, db, clock
    db.dispose()


def basic(password: str = PASSWORD) -> m.Credential:
    return m.Credential(CredentialType.USERNAME_PASSWORD, username="alice", password=password)


def test_session_expires(env) -> None:  # type: ignore[no-untyped-def]
    svc, _, clock = env
    res = svc.run("Authenticate", basic(), m.AuthenticateRequest("Login"), "r1")
    session = m.Credential(CredentialType.SESSION, token=res.token)
    assert svc.run("GetRandomBytes", session, m.GetRandomBytesRequest(4), "r2").data
    clock.now += timedelta(seconds=61)
    with pytest.raises(InvalidCredentials, match="expired"):
        svc.run("GetRandomBytes", session, m.GetRandomBytesRequest(4), "r3")


def test_failed_authentications_lock_the_client(env) -> None:  # type: ignore[no-untyped-def]
    svc, db, clock = env
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            svc.run("GetRandomBytes", basic("wrong-password"), m.GetRandomBytesRequest(1), "r")
    clock.now += timedelta(seconds=10)  # past the backoff the third failure started
    with pytest.raises(InvalidCredentials) as locked:  # told nothing it could tell apart
        svc.run("GetRandomBytes", basic(), m.GetRandomBytesRequest(1), "r")
    assert locked.value.reason == "unknown user name or wrong password"
    with db.transaction() as conn:
        state = conn.execute(select(t.endpoints.c.state)).scalar_one()
        rows = conn.execute(select(t.audit.c.event, t.audit.c.result, t.audit.c.count)).all()
    assert state == "Locked"
    # the lockout, and the refusals: the first at once, the rest counted in its tally
    assert ("ClientLocked", "Denied", None) in rows
    assert rows.count(("AuthenticationFailed", "Denied", 1)) == 1


def test_a_success_resets_the_failure_count(env) -> None:  # type: ignore[no-untyped-def]
    svc, db, clock = env
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            svc.run("GetRandomBytes", basic("wrong-password"), m.GetRandomBytesRequest(1), "r")
    svc.run("GetRandomBytes", basic(), m.GetRandomBytesRequest(1), "r")
    with pytest.raises(InvalidCredentials):
        svc.run("GetRandomBytes", basic("wrong-password"), m.GetRandomBytesRequest(1), "r")
    # a third wrong password, but not three in a row: not locked (the backoff of the
    # user name, which a success does not reset, is waited out)
    clock.now += timedelta(seconds=2)
    assert svc.run("GetRandomBytes", basic(), m.GetRandomBytesRequest(1), "r").data


def test_changed_password_invalidates_the_cached_one(env) -> None:  # type: ignore[no-untyped-def]
    svc, db, _ = env
    svc.run("GetRandomBytes", basic(), m.GetRandomBytesRequest(1), "r")  # now cached
    with db.transaction(write=True) as conn:
        conn.execute(update(t.endpoints).values(password_hash=hash_password("new-password-9")))
    with pytest.raises(InvalidCredentials):
        svc.run("GetRandomBytes", basic(), m.GetRandomBytesRequest(1), "r")
    assert svc.run("GetRandomBytes", basic("new-password-9"), m.GetRandomBytesRequest(1), "r")


def test_expired_key_is_refused_for_encryption_and_served_for_decryption(env) -> None:  # type: ignore[no-untyped-def]
    svc, db, clock = env
    key = svc.run("CreateKey", basic(), m.CreateKeyRequest(), "r").key
    with db.transaction(write=True) as conn:
        conn.execute(update(t.keys).values(t_expired=clock.now + timedelta(days=30)))
    clock.now += timedelta(days=31)
    with pytest.raises(KeyNotUsable):
        svc.run("GetKey", basic(), m.GetKeyRequest(key_id=key.key_id,
                                                  usage=KeyUsage.ENCRYPT), "r")
    got = svc.run("GetKey", basic(), m.GetKeyRequest(key_id=key.key_id,
                                                    usage=KeyUsage.DECRYPT), "r")
    assert got.keys[0].value == key.value and got.keys[0].state.value == "Expired"


def test_a_sealed_value_moved_to_another_row_does_not_open(env) -> None:  # type: ignore[no-untyped-def]
    svc, db, _ = env
    a = svc.run("CreateKey", basic(), m.CreateKeyRequest(), "r").key
    b = svc.run("CreateKey", basic(), m.CreateKeyRequest(), "r").key
    with db.transaction(write=True) as conn:
        sealed_a = conn.execute(select(t.keys.c.sealed_value).where(t.keys.c.id == a.key_id)) \
            .scalar_one()
        conn.execute(update(t.keys).where(t.keys.c.id == b.key_id).values(sealed_value=sealed_a))
    with pytest.raises(InternalError, match="integrity"):
        svc.run("GetKey", basic(), m.GetKeyRequest(key_id=b.key_id), "r")


def test_unknown_template_and_pep(env) -> None:  # type: ignore[no-untyped-def]
    svc, _, _ = env
    with pytest.raises(NotFound):
        svc.run("CreateKey", basic(), m.CreateKeyRequest(template_name="none"), "r")
    with pytest.raises(NotFound):
        svc.run("CreateKey", basic(), m.CreateKeyRequest(pep_id=str(uuid.uuid4())), "r")


def test_migrations_are_recorded_and_idempotent(env) -> None:  # type: ignore[no-untyped-def]
    _, db, _ = env
    assert db.migrate() == migrations.LATEST
    with db.transaction() as conn:
        assert migrations.current_version(conn) == migrations.LATEST
