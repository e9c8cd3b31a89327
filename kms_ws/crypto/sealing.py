"""Secrets at rest: AES-256-GCM under the master key, with what the secret belongs to as
associated data so a sealed value cannot be moved to another row or version. Key values
are bound to (key id, version); wrapping KEKs to (endpoint id, wrapping key id)."""

from __future__ import annotations

import secrets
from typing import Protocol

from cryptography.exceptions import InvalidTag

_FORMAT = b"\x01"


class SealError(Exception):
    """A sealed value does not open: wrong master key, or the row was tampered with."""


class Aead(Protocol):
    """What sealing needs of a master key: AESGCM's interface (a PKCS#11 token has it too)."""

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...


def key_aad(key_id: str, version: int) -> bytes:
    return b"kms-ws/key-value/1|" + key_id.encode("ascii") + b"|" + str(version).encode("ascii")


def kek_aad(endpoint_id: str, wrapping_key_id: str) -> bytes:
    return b"kms-ws/wrapping-key/1|" + endpoint_id.encode("ascii") + b"|" + \
        wrapping_key_id.encode("utf-8")


def seal(master: Aead, key_id: str, version: int, value: bytes) -> bytes:
    return seal_with(master, key_aad(key_id, version), value)


def unseal(master: Aead, key_id: str, version: int, sealed: bytes) -> bytes:
    return unseal_with(master, key_aad(key_id, version), sealed, f"key {key_id}")


def seal_with(master: Aead, aad: bytes, value: bytes) -> bytes:
    nonce = secrets.token_bytes(12)
    return _FORMAT + nonce + master.encrypt(nonce, value, aad)


def unseal_with(master: Aead, aad: bytes, sealed: bytes, what: str) -> bytes:
    if len(sealed) < 1 + 12 + 16 or sealed[:1] != _FORMAT:
        raise SealError(f"sealed value of {what} has an unknown format")
    try:
        return master.decrypt(sealed[1:13], sealed[13:], aad)
    except InvalidTag:
        raise SealError(f"sealed value of {what} does not open under the master key") from None


def audit_key_aad(chain: str) -> bytes:
    """The audit chain's MAC key (kms_ws/audit/chain.py), bound to its chain."""
    return b"kms-ws/audit-chain-key/1|" + chain.encode("ascii")


def secret_aad(endpoint_id: str) -> bytes:
    return b"kms-ws/endpoint-secret/1|" + endpoint_id.encode("ascii")


def seal_secret(master: Aead, endpoint_id: str, secret: bytes) -> bytes:
    """An endpoint's symmetric credential (HMAC key), bound to the endpoint."""
    return seal_with(master, secret_aad(endpoint_id), secret)


def unseal_secret(master: Aead, endpoint_id: str, sealed: bytes) -> bytes:
    return unseal_with(master, secret_aad(endpoint_id), sealed,
                       f"the secret of endpoint {endpoint_id}")
