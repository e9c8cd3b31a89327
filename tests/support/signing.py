"""Signing material for tests: real keys and certificates, signed raw envelopes, xmlsec1."""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree

from kms_ws.client import KmsClient, hmac_signing_key
from kms_ws.security import wssecurity
from kms_ws.security.certificates import self_signed
from kms_ws.xmlns import KMS, SOAP, WSA, WSMAN, WSU

from .clients import ensure_realms
from .envelopes import envelope, envelope11

XMLSEC1 = "xmlsec1"
SOAP_BODY_ID = f"{SOAP}:Body"


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class Signer:
    name: str
    key: wssecurity.SigningKey
    endpoint_id: str
    key_pem: bytes
    cert_pem: bytes


def new_key(kind: str = "ec") -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def register_signer(admin: KmsClient, kind: str = "ec", *, by_name: bool = False,
                    realms: tuple[str, ...] = ()) -> Signer:
    """A client registered with a fresh certificate (AsymmetricKey)."""
    name = f"signer-{uuid.uuid4().hex[:8]}"
    key = new_key(kind)
    cert = self_signed(key, name)
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    ensure_realms(admin, realms)
    endpoint_id = admin.register_endpoint("Client", name, certificate=cert_pem, realms=realms)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return Signer(name, wssecurity.SigningKey(key, cert, name if by_name else None),
                  endpoint_id, key_pem, cert_pem)


def register_hmac(admin: KmsClient, secret: bytes) -> tuple[str, wssecurity.SigningKey]:
    name = f"hmac-{uuid.uuid4().hex[:8]}"
    admin.register_endpoint("Client", name, symmetric_key=secret)
    return name, hmac_signing_key(name, secret)


def signed(body: str, op: str, key: wssecurity.SigningKey, *, now: datetime | None = None,
           ttl: int = 300, headers: str = "", soap11: bool = False) -> bytes:
    """A raw request envelope (extra header blocks: `headers`; soap11: a SOAP 1.1 one),
    signed as KmsClient signs."""
    env = etree.fromstring((envelope11 if soap11 else envelope)(body, op=op, headers=headers))
    wssecurity.sign(env, key, now=now or utcnow(), ttl_seconds=ttl)
    return etree.tostring(env)


def xmlsec1(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([XMLSEC1, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def id_attrs(*qualified: str) -> list[str]:
    out = []
    for q in qualified:
        out += ["--id-attr:Id", q]
    return out


# Every part the server signs: the Body, the Timestamp and each header block it sends.
ID_ATTRS = id_attrs(SOAP_BODY_ID, f"{WSU}:Timestamp",
                    *[f"{WSA}:{n}" for n in ("To", "Action", "MessageID", "RelatesTo")],
                    f"{KMS}:UpdateVersioningTokens", f"{WSMAN}:TotalItemsCountEstimate")
