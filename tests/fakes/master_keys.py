"""Master keys in memory (crypto.master_key.MasterKeyProvider): real AES-GCM keys that
live only as long as the test."""

from __future__ import annotations

import uuid

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kms_ws.crypto.master_key import Keyring, MasterKeyError, MasterKeyProvider
from kms_ws.crypto.random import random_bytes
from kms_ws.crypto.sealing import Aead


class MemoryMasterKeys:
    name = "memory"

    def __init__(self) -> None:
        self._keys: dict[str, bytes] = {}

    def key_ids(self) -> list[str]:
        return list(self._keys)

    def create(self) -> str:
        key_id = str(uuid.uuid4())
        self._keys[key_id] = random_bytes(32)
        return key_id

    def open(self, key_id: str) -> Aead:
        if key_id not in self._keys:
            raise MasterKeyError(f"no master key {key_id}")
        return AESGCM(self._keys[key_id])

    def destroy(self, key_id: str) -> None:
        self._keys.pop(key_id, None)


def keyring() -> Keyring:
    """A keyring with one new master key, the current one."""
    provider: MasterKeyProvider = MemoryMasterKeys()
    return Keyring(provider, provider.create())
