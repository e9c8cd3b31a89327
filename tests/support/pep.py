"""A client with a self-authenticating PEP (§4.6) for the PEP-proof tests: the client's
own KEK, the PEP's registered credential and wrapping key, its PepSigner; provers that
sign what they are told to; and the PEP's denials in the audit trail."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from lxml import etree
from zeep import Plugin

from kms_ws.client import Kek, KmsClient, PepSigner
from kms_ws.security import pep_proof, wssecurity
from kms_ws.security.certificates import self_signed

from . import db
from .server import ServerProcess
from .signing import new_key, utcnow


class Capture(Plugin):  # type: ignore[misc]
    """Requests as sent (after the PEP proof header is added; `sent` is the last) and
    the responses received."""

    def __init__(self) -> None:
        self.all: list[bytes] = []
        self.received: list[bytes] = []

    def ingress(self, envelope: Any, http_headers: dict, operation: Any) -> tuple[Any, dict]:
        self.received.append(etree.tostring(envelope))
        return envelope, http_headers

    @property
    def sent(self) -> bytes:
        return self.all[-1] if self.all else b""

    def egress(self, envelope: Any, http_headers: dict, operation: Any,
               binding_options: Any) -> tuple[Any, dict]:
        self.all.append(etree.tostring(envelope))
        return envelope, http_headers


class Setup:
    def __init__(self, server: ServerProcess, admin: KmsClient, validator: Any,
                 kind: str) -> None:
        self.name = f"client-{uuid.uuid4().hex[:8]}"
        self.password = f"pw-{uuid.uuid4().hex}"
        admin.register_endpoint("Client", self.name, password=self.password)
        self.client_kek = Kek(f"ckek-{uuid.uuid4().hex[:8]}", secrets.token_bytes(32))
        self.capture = Capture()
        self.client = KmsClient(server.url, self.name, self.password,
                                plugins=[validator, self.capture],
                                wrapping_keys=[self.client_kek])
        self.client.register_wrapping_values({self.client_kek.key_id: self.client_kek.secret})
        self.pep_kek = Kek(f"pkek-{uuid.uuid4().hex[:8]}", secrets.token_bytes(32))
        self.key, cred = credential(kind)
        self.pep_id = self.client.register_endpoint(
            "Pep", f"pep-{uuid.uuid4().hex[:8]}", **cred,
            wrapping_values={self.pep_kek.key_id: self.pep_kek.secret})
        self.signer = PepSigner(self.pep_id, self.key)


def credential(kind: str) -> tuple[wssecurity.SigningKey, dict[str, bytes]]:
    """A PEP credential: its signing key, and the RegisterEndpoint arguments."""
    if kind == "hmac":
        secret = secrets.token_bytes(32)
        return wssecurity.SigningKey(secret), {"symmetric_key": secret}
    key = new_key(kind)
    cert = self_signed(key, f"pep-{kind}")
    return wssecurity.SigningKey(key, cert), {
        "certificate": cert.public_bytes(serialization.Encoding.PEM)}


class Forged:
    """A prover that signs what it is told to, not what the request is."""

    def __init__(self, key: wssecurity.SigningKey, pep_id: str | None = None,
                 key_id: str | None = "-", operation: str | None = None,
                 age: timedelta = timedelta(0),
                 bound: Sequence[tuple[str, str]] | None = None) -> None:
        self.key, self.pep_id, self.key_id, self.operation, self.age = \
            key, pep_id, key_id, operation, age
        self.bound = bound

    def prove(self, operation: str, pep_id: str, key_id: str | None,
              message_id: str, bound: Sequence[tuple[str, str]] = ()) -> etree._Element:
        return pep_proof.sign(self.key, self.operation or operation, self.pep_id or pep_id,
                              key_id if self.key_id == "-" else self.key_id, message_id,
                              utcnow() - self.age, bound if self.bound is None else self.bound)


def denials(server: ServerProcess, pep_id: str) -> list[tuple[str, str]]:
    """(event, result) of the denied requests made for the PEP, oldest first."""
    return db.rows(server.data_dir, "SELECT event, result FROM audit WHERE pep_id = ? AND "
                   "result = 'Denied' ORDER BY id", (pep_id,))
