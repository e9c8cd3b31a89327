"""A signed Authenticate Login (or Validate) whose Body carries the password is a signed
message like any other: it enters the replay cache, so a copy of it sent again — by a
relay, or by whoever read it from a log — gets no session of its own. The Body's
credential is what authenticates; the signature still makes the message one-time.
In process (tests/support/inprocess.py): real SQLite, real crypto, real XML signatures,
every message validated against schemas/."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kms_ws.client import hmac_signing_key
from kms_ws.domain.model import CredentialType
from kms_ws.service.admin.messages import AdminRequest
from kms_ws.service.messages import Credential
from kms_ws.service.operator import LocalOperator
from kms_ws.xmlns import KMS

from ..support.inprocess import DEFAULT_REALM, InProcessServer
from ..support.signing import signed, utcnow

RIGHTS = ["Create", "Delete", "Edit", "Read", "Reference"]


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[InProcessServer]:
    server = InProcessServer(tmp_path / "data")
    server.clock.now = utcnow()
    yield server
    server.close()


def _body(kind: str, name: str, password: str) -> str:
    return (f"<kms:Authenticate><kms:RequestType>{kind}</kms:RequestType><kms:Credential>"
            "<kms:CredentialType>UsernamePassword</kms:CredentialType><kms:UsernamePassword>"
            f"<kms:Username>{name}</kms:Username><kms:Password>{password}</kms:Password>"
            "</kms:UsernamePassword></kms:Credential></kms:Authenticate>")


@pytest.mark.parametrize("kind", ["Login", "Validate"])
def test_a_signed_login_sent_again_is_a_replay(srv: InProcessServer, kind: str) -> None:
    password = f"pw-{uuid.uuid4().hex}"
    name = f"c-{uuid.uuid4().hex[:8]}"
    srv.service.run_as_operator("AdminCreate", AdminRequest(
        "Create", "Client", document={"Name": name, "Administrator": "false",
                                      "RealmAssociations": {"RealmAssociation": [
                                          {"Realm": DEFAULT_REALM, "Right": RIGHTS}]}},
        credential=Credential(CredentialType.USERNAME_PASSWORD, password=password)),
        LocalOperator(realms=(DEFAULT_REALM,)))
    secret = secrets.token_bytes(32)
    signer = f"s-{uuid.uuid4().hex[:8]}"
    srv.service.run_as_operator("AdminCreate", AdminRequest(
        "Create", "Client", document={"Name": signer, "Administrator": "false",
                                      "RealmAssociations": {"RealmAssociation": [
                                          {"Realm": DEFAULT_REALM, "Right": RIGHTS}]}},
        credential=Credential(CredentialType.SYMMETRIC_KEY, values=(secret,))),
        LocalOperator(realms=(DEFAULT_REALM,)))
    message = signed(_body(kind, name, password), "Authenticate",
                     hmac_signing_key(signer, secret))
    first = srv.post(message)
    assert first.ok
    if kind == "Login":
        assert first.env.findtext(f".//{{{KMS}}}SessionToken")
    again = srv.post(message)
    assert not again.ok and again.error_code == "E_REPLAY"
    assert again.env.findtext(f".//{{{KMS}}}SessionToken") is None
