"""The caller is authenticated in the request's own unit of work, from what the
transport saw (service.authentication), never from a look-up the transport made before.

The transport looks up one thing before the service runs: the registered key that
verifies a message signature (it must verify the XML before it can trust what the
message asks for). Everything else — the TLS client certificate's owner, a session, a
password — is resolved by the service. Each attack below changes the store in the gap
between the transport and the service's unit of work (the hook runs as the service is
entered, after the transport has done its part): a client whose key an administrator
replaced, removed, or who was disabled or deleted, must not be served with what it held
a moment before. In process (tests/support/inprocess.py): real SQLite, real crypto, real
XML signatures, every message validated against schemas/."""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from kms_ws.client import hmac_signing_key
from kms_ws.domain.model import CredentialType
from kms_ws.security import wssecurity
from kms_ws.security.certificates import self_signed
from kms_ws.service.admin.messages import AdminRequest
from kms_ws.service.messages import Credential
from kms_ws.service.operator import LocalOperator
from kms_ws.xmlns import KMS

from ..support.inprocess import (
    DEFAULT_REALM,
    InProcessServer,
    login_request,
    random_bytes_request,
    session_request,
)
from ..support.signing import new_key, signed, utcnow

RANDOM = "<kms:GetRandomBytes><kms:NumberOfBytes>4</kms:NumberOfBytes></kms:GetRandomBytes>"
RIGHTS = ["Create", "Delete", "Edit", "Read", "Reference"]


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[InProcessServer]:
    server = InProcessServer(tmp_path / "data")
    server.clock.now = utcnow()  # the certificates are made valid from now
    yield server
    server.close()


def _operator(srv: InProcessServer, action: str, *args: Any, name: str | None = None,
              **kwargs: Any) -> Any:
    """An administrator's operation, run by the local operator (the same handlers)."""
    return srv.service.run_as_operator(
        f"Admin{action}", AdminRequest(action, "Client", *args, **kwargs),
        LocalOperator(realms=(DEFAULT_REALM,), client=name))


def _add(srv: InProcessServer, credential: Credential) -> str:
    name = f"c-{uuid.uuid4().hex[:8]}"
    doc = {"Name": name, "Administrator": "false", "RealmAssociations": {
        "RealmAssociation": [{"Realm": DEFAULT_REALM, "Right": RIGHTS}]}}
    _operator(srv, "Create", document=doc, credential=credential)
    return name


def _edit(srv: InProcessServer, name: str, **fields: Any) -> None:
    doc = _operator(srv, "Get", name, name=name).documents[0]
    _operator(srv, "Edit", document={**doc, **fields}, name=name)


def _credentials(value: bytes | None) -> dict[str, Any]:
    """A Credentials element setting `value` (None: removing the credential)."""
    return {"CredentialValue": [] if value is None else [
        {"Length": len(value), "Value": base64.b64encode(value).decode()}]}


def _certificate() -> tuple[wssecurity.SigningKey, bytes]:
    key = new_key()
    cert = self_signed(key, f"cert-{uuid.uuid4().hex[:8]}")
    return wssecurity.SigningKey(key, cert), cert.public_bytes(serialization.Encoding.DER)


@contextmanager
def between(srv: InProcessServer, change: Callable[[], None]) -> Iterator[None]:
    """`change` runs once, as the transport hands the request to the service."""
    real = srv.service.run

    def run(*args: Any, **kwargs: Any) -> Any:
        srv.service.run = real  # type: ignore[method-assign]
        change()
        return real(*args, **kwargs)

    srv.service.run = run  # type: ignore[method-assign]
    try:
        yield
    finally:
        srv.service.run = real  # type: ignore[method-assign]


def _hmac_client(srv: InProcessServer) -> tuple[str, Callable[[], bytes]]:
    secret = secrets.token_bytes(32)
    name = _add(srv, Credential(CredentialType.SYMMETRIC_KEY, values=(secret,)))
    key = hmac_signing_key(name, secret)
    return name, lambda: signed(RANDOM, "GetRandomBytes", key)


def _signing_client(srv: InProcessServer) -> tuple[str, Callable[[], bytes]]:
    key, der = _certificate()
    name = _add(srv, Credential(CredentialType.ASYMMETRIC_KEY, values=(der,)))
    return name, lambda: signed(RANDOM, "GetRandomBytes", key)


SIGNED_ATTACKS = {
    # the secret an attacker stole, rotated by the administrator: the old one signs nothing
    "hmac secret replaced": (_hmac_client, lambda srv, name: _edit(
        srv, name, Credentials=_credentials(secrets.token_bytes(32)))),
    "hmac secret removed": (_hmac_client, lambda srv, name: _edit(
        srv, name, Credentials=_credentials(None))),
    "hmac client disabled": (_hmac_client, lambda srv, name: _edit(srv, name,
                                                                   State="Disabled")),
    "hmac client deleted": (_hmac_client, lambda srv, name: _operator(srv, "Delete", name,
                                                                      name=name)),
    "certificate replaced": (_signing_client, lambda srv, name: _edit(
        srv, name, Credentials=_credentials(_certificate()[1]))),
    "signing client disabled": (_signing_client, lambda srv, name: _edit(srv, name,
                                                                         State="Disabled")),
    "signing client deleted": (_signing_client, lambda srv, name: _operator(
        srv, "Delete", name, name=name)),
}


@pytest.mark.parametrize("attack", sorted(SIGNED_ATTACKS))
def test_a_signer_changed_after_its_key_was_looked_up_is_not_served(
        srv: InProcessServer, attack: str) -> None:
    make, change = SIGNED_ATTACKS[attack]
    name, message = make(srv)
    assert srv.post(message()).ok  # the key is looked up (a certificate's is remembered)
    with between(srv, lambda: change(srv, name)):
        refused = srv.post(message())
    assert not refused.ok and refused.error_code == "E_INVALID_CREDENTIALS", attack
    assert not srv.post(message()).ok  # nor afterwards


def _tls_client(srv: InProcessServer) -> tuple[str, bytes]:
    _, der = _certificate()
    return _add(srv, Credential(CredentialType.ASYMMETRIC_KEY, values=(der,))), der


TLS_ATTACKS = {
    "certificate replaced": lambda srv, name: _edit(
        srv, name, Credentials=_credentials(_certificate()[1])),
    "certificate removed": lambda srv, name: _edit(srv, name,
                                                   Credentials=_credentials(None)),
    "client disabled": lambda srv, name: _edit(srv, name, State="Disabled"),
    "client deleted": lambda srv, name: _operator(srv, "Delete", name, name=name),
}


@pytest.mark.parametrize("attack", sorted(TLS_ATTACKS))
def test_a_tls_client_certificate_is_resolved_in_the_requests_unit_of_work(
        srv: InProcessServer, attack: str) -> None:
    name, der = _tls_client(srv)
    assert srv.post(random_bytes_request(), peer_certificate=der).ok
    with between(srv, lambda: TLS_ATTACKS[attack](srv, name)):
        refused = srv.post(random_bytes_request(), peer_certificate=der)
    assert not refused.ok and refused.error_code == "E_INVALID_CREDENTIALS", attack


@contextmanager
def units_of_work_before_run(srv: InProcessServer) -> Iterator[list[bool]]:
    """Each unit of work the request opens: True if opened before the service ran."""
    opened: list[bool] = []
    running = [False]
    real_uow, real_run = srv.db.unit_of_work, srv.service.run

    def unit_of_work(*args: Any, **kwargs: Any) -> Any:
        opened.append(not running[0])
        return real_uow(*args, **kwargs)

    def run(*args: Any, **kwargs: Any) -> Any:
        running[0] = True
        return real_run(*args, **kwargs)

    srv.db.unit_of_work = unit_of_work  # type: ignore[method-assign]
    srv.service.run = run  # type: ignore[method-assign]
    try:
        yield opened
    finally:
        srv.db.unit_of_work = real_uow  # type: ignore[method-assign]
        srv.service.run = real_run  # type: ignore[method-assign]


def test_the_transport_looks_up_nothing_but_a_signatures_key(srv: InProcessServer) -> None:
    """HTTP Basic, a session, a TLS client certificate: nothing is read before the
    service's unit of work. A signed message: the one key look-up (a certificate's key
    is then remembered: none)."""
    password = f"pw-{uuid.uuid4().hex}"
    name = _add(srv, Credential(CredentialType.USERNAME_PASSWORD, password=password))
    _, der = _tls_client(srv)
    _, hmac_message = _hmac_client(srv)
    _, cert_message = _signing_client(srv)
    token = srv.post(login_request(name, password)).env.findtext(f".//{{{KMS}}}SessionToken")
    assert token
    for post, before in (
            (lambda: srv.post(random_bytes_request(), (name, password)), 0),
            (lambda: srv.post(session_request(token)), 0),
            (lambda: srv.post(random_bytes_request(), peer_certificate=der), 0),
            (lambda: srv.post(hmac_message()), 1),
            (lambda: srv.post(cert_message()), 1),
            (lambda: srv.post(cert_message()), 0)):
        with units_of_work_before_run(srv) as opened:
            assert post().ok
        assert opened.count(True) == before and False in opened
