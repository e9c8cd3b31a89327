"""The PushAuditMessage quota across quota minutes (a controllable clock; the service
over a real SQLite store): a minute's refusals beyond the first become one audit record
when the client's next call opens a new minute, and the quota starts afresh."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from kms_ws.app import init_data_dir
from kms_ws.audit.chain import verify_store
from kms_ws.config import Config
from kms_ws.crypto.passwords import hash_password
from kms_ws.domain.errors import AuditQuotaExceeded
from kms_ws.domain.model import AuditMessage, ClientState, CredentialType, Endpoint, EndpointKind
from kms_ws.service import messages as m
from kms_ws.service.dispatch import KmsService
from kms_ws.store import tables as t

from ..support.clock import Clock

PASSWORD = "a-long-password"


@pytest.fixture()
def env(tmp_path):  # type: ignore[no-untyped-def]
    cfg = Config(data_dir=tmp_path / "d")
    cfg = dataclasses.replace(cfg, security=dataclasses.replace(
        cfg.security, push_audit_messages_per_minute=10, push_audit_bytes_per_minute=0,
        allow_basic_over_http=True))  # in process: the passwords cross no network
    db, keyring = init_data_dir(cfg)
    clock = Clock()
    svc = KmsService(db, keyring, cfg.security, clock)
    client_id = str(uuid.uuid4())
    with db.unit_of_work(write=True) as uow:
        uow.endpoints.insert_endpoint(Endpoint(
            endpoint_id=client_id, kind=EndpointKind.CLIENT, name="tape-lib",
            state=ClientState.ACTIVE, credential_type=CredentialType.USERNAME_PASSWORD,
            version=1, realms=("realm://localhost/default",),
            password_hash=hash_password(PASSWORD)), clock())
    yield svc, db, clock, keyring, client_id
    db.dispose()


def push(svc: KmsService, n: int) -> int:
    cred = m.Credential(CredentialType.USERNAME_PASSWORD, username="tape-lib",
                        password=PASSWORD)
    req = m.PushAuditMessageRequest(tuple(AuditMessage(event="Used") for _ in range(n)))
    return int(svc.run("PushAuditMessage", cred, req, "r").accepted)


def quota_records(db, client_id: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    a = t.audit.c
    with db.transaction() as conn:
        return [tuple(r) for r in conn.execute(select(a.result, a.message).where(
            a.actor_id == client_id, a.event == "E_AUDIT_QUOTA_EXCEEDED").order_by(a.id))]


def test_refusals_of_a_minute_become_one_record_when_the_next_minute_opens(env) -> None:  # type: ignore[no-untyped-def]
    svc, db, clock, keyring, client_id = env
    assert push(svc, 8) == 8
    for _ in range(4):
        with pytest.raises(AuditQuotaExceeded):
            push(svc, 3)
    assert push(svc, 2) == 2  # exactly the quota
    first = quota_records(db, client_id)
    assert len(first) == 1 and first[0][0] == "Denied"  # the first refusal only
    clock.now += timedelta(minutes=1)
    assert push(svc, 10) == 10  # a new minute: the whole quota again
    records = quota_records(db, client_id)
    assert len(records) == 2 and records[1][0] == "Denied"
    assert records[1][1].startswith("4 calls were refused by the PushAuditMessage quota in "
                                    "the minute from 2026-03-01T08:00Z")
    with pytest.raises(AuditQuotaExceeded):
        push(svc, 1)
    clock.now += timedelta(minutes=1)
    with pytest.raises(AuditQuotaExceeded):  # refused in a new minute: its first record
        push(svc, 11)
    assert len(quota_records(db, client_id)) == 4
    # every record, pushed or about refusals, is in the chain
    verdict = verify_store(db, keyring)
    assert verdict.intact and verdict.records == 8 + 2 + 10 + 4, verdict.findings
