"""Key values at rest: AES-256-GCM under the master key, with the key id and version as
associated data so a sealed value cannot be moved to another row or version."""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_FORMAT = b"\x01"


class SealError(Exception):
    """A sealed value does not open: wrong master key, or the row was tampered with."""


def _aad(key_id: str, version: int) -> bytes:
    return b"kms-ws/key-value/1|" + key_id.encode("ascii") + b"|" + str(version).encode("ascii")


def seal(master: AESGCM, key_id: str, version: int, value: bytes) -> bytes:
    nonce = secrets.token_bytes(12)
    return _FORMAT + nonce + master.encrypt(nonce, value, _aad(key_id, version))


def unseal(master: AESGCM, key_id: str, version: int, sealed: bytes) -> bytes:
    if len(sealed) < 1 + 12 + 16 or sealed[:1] != _FORMAT:
        raise SealError(f"sealed value of key {key_id} has an unknown format")
    try:
        return master.decrypt(sealed[1:13], sealed[13:], _aad(key_id, version))
    except InvalidTag:
        raise SealError(f"sealed value of key {key_id} does not open under the master key") from None


def _secret_aad(endpoint_id: str) -> bytes:
    return b"kms-ws/endpoint-secret/1|" + endpoint_id.encode("ascii")


def seal_secret(master: AESGCM, endpoint_id: str, secret: bytes) -> bytes:
    """An endpoint's symmetric credential (HMAC key), bound to the endpoint."""
    nonce = secrets.token_bytes(12)
    return _FORMAT + nonce + master.encrypt(nonce, secret, _secret_aad(endpoint_id))


def unseal_secret(master: AESGCM, endpoint_id: str, sealed: bytes) -> bytes:
    try:
        return master.decrypt(sealed[1:13], sealed[13:], _secret_aad(endpoint_id))
    except (InvalidTag, ValueError):
        raise SealError(f"the secret of endpoint {endpoint_id} does not open") from None
