"""The replay cache on the read-first path (GetKey), through the service on real SQLite: a
signed GetKey enters the cache in the same commit as its delivery record, a failed one is
remembered all the same, and a GetKey that must create its key (run again as a writer)
is remembered once."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from kms_ws.crypto.sealing import seal_secret
from kms_ws.domain.errors import KmsError, ReplayedMessage
from kms_ws.domain.model import CredentialType, DataSet
from kms_ws.security.proofs import secret_fingerprint
from kms_ws.service import messages as m
from kms_ws.service.admin.messages import Ref
from kms_ws.service.dispatch import KmsService
from kms_ws.store import tables as t
from kms_ws.store.engine import Database

from .test_policy_service import DEFAULT, admin, by_data, cred, enforce, env  # noqa: F401

SECRET = bytes(range(32))


def _signed(svc: KmsService, db: Database) -> m.Credential:
    """A credential as the transport builds it from a message signature it verified with
    root's registered secret (a fresh message)."""
    with db.unit_of_work(write=True) as uow:
        root = uow.endpoints.find_client("root")
        assert root is not None
        if uow.endpoints.endpoint_credential(endpoint_id=root.endpoint_id) is None:
            uow.endpoints.insert_endpoint_credential(
                root.endpoint_id, CredentialType.SYMMETRIC_KEY, master_key_id=svc.master.key_id,
                sealed_secret=seal_secret(svc.master.aead_for(svc.master.key_id),
                                          root.endpoint_id, SECRET))
    return m.Credential(CredentialType.SYMMETRIC_KEY, signature=m.VerifiedSignature(
        root.endpoint_id, secret_fingerprint(SECRET),
        hashlib.sha256(uuid.uuid4().bytes).hexdigest(), svc.clock() + timedelta(minutes=5)))


def _count(db: Database, table, **equals) -> int:  # type: ignore[no-untyped-def]
    query = select(func.count()).select_from(table)
    for column, value in equals.items():
        query = query.where(table.c[column] == value)
    with db.transaction() as conn:
        return int(conn.execute(query).scalar_one())


def test_a_replayed_get_key_is_refused_and_delivers_once(env) -> None:  # type: ignore[no-untyped-def]  # noqa: F811 - the env fixture
    svc, db, _, _ = env
    key = svc.run("CreateKey", cred(), m.CreateKeyRequest(length_bits=256), "r").key
    signed = _signed(svc, db)
    got = svc.run("GetKey", signed, m.GetKeyRequest(key_id=key.key_id), "r").keys[0]
    assert got.key_id == key.key_id
    for _ in range(2):
        with pytest.raises(ReplayedMessage):
            svc.run("GetKey", signed, m.GetKeyRequest(key_id=key.key_id), "r")
    assert _count(db, t.audit, key_id=key.key_id, event="KeyDelivered") == 1
    assert _count(db, t.audit, event="Replay", result="Denied") == 2
    assert _count(db, t.seen_messages, digest=signed.signature.message_digest) == 1


def test_a_failed_signed_get_key_is_remembered(env) -> None:  # type: ignore[no-untyped-def]  # noqa: F811 - the env fixture
    """A request that failed is in the cache too: its copy is a replay, not a second try."""
    svc, db, _, _ = env
    signed = _signed(svc, db)
    missing = m.GetKeyRequest(key_id=str(uuid.uuid4()))
    with pytest.raises(KmsError) as first:
        svc.run("GetKey", signed, missing, "r")
    assert not isinstance(first.value, ReplayedMessage)
    with pytest.raises(ReplayedMessage):
        svc.run("GetKey", signed, missing, "r")
    assert _count(db, t.seen_messages, digest=signed.signature.message_digest) == 1


def test_a_signed_get_key_that_creates_its_key_is_remembered_once(env) -> None:  # type: ignore[no-untyped-def]  # noqa: F811 - the env fixture
    """GetKey by data that must create its key runs again as a writer: the message enters
    the cache once, and its copy creates nothing."""
    svc, db, _, _ = env
    p = admin(svc, "Create", "KeyAssignmentPolicy", document={
        "Name": "per-tape", "Condition": [{"Name": "tape", "Value": "T9"}],
        "Generation": "PerDataSet"}).documents[0]
    enforce(svc, "KeyAssignmentPolicy", p["PolicyId"], Ref("Realm", DEFAULT))
    signed = _signed(svc, db)
    req = m.GetKeyRequest(datasets=(DataSet("tape", "T9"),))
    created = svc.run("GetKey", signed, req, "r").keys[0]
    keys = _count(db, t.keys)
    with pytest.raises(ReplayedMessage):
        svc.run("GetKey", signed, req, "r")
    assert _count(db, t.keys) == keys
    assert _count(db, t.seen_messages, digest=signed.signature.message_digest) == 1
    assert by_data(svc, ("tape", "T9")).key_id == created.key_id
