"""The master key that seals every stored key value: a 0600 file in the data directory.

File format (JSON): {"format": "kms-ws-master-key", "version": 1, "key_id": UUID,
"key": base64 of 32 bytes}. It is created once (`kms-ws init` or the first `serve`) and
never rewritten; a file readable by group or others is refused.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .random import random_bytes

FILE_NAME = "master.key"


class MasterKeyError(Exception):
    pass


@dataclass(frozen=True)
class MasterKey:
    key_id: str
    aead: AESGCM = field(repr=False)
    # HMAC key for stateless enumeration contexts, derived (HKDF-SHA256) from the master
    # key: every process and node sharing the master key can verify a context.
    context_mac_key: bytes = field(repr=False, default=b"")


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"kms-ws/" + purpose).derive(secret)


def _master(key_id: str, secret: bytes) -> MasterKey:
    return MasterKey(key_id, AESGCM(secret), _derive(secret, b"enumeration-context/1"))


def create(path: Path) -> MasterKey:
    key_id = str(uuid.uuid4())
    secret = random_bytes(32)
    body = json.dumps({"format": "kms-ws-master-key", "version": 1, "key_id": key_id,
                       "key": base64.b64encode(secret).decode("ascii")}).encode("ascii")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, body)
        os.fsync(fd)
    finally:
        os.close(fd)
    return _master(key_id, secret)


def load(path: Path) -> MasterKey:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise MasterKeyError(f"no master key at {path}; run 'kms-ws init'") from None
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise MasterKeyError(f"master key {path} is readable by others; chmod 600 it")
    try:
        doc = json.loads(path.read_bytes())
        if doc.get("format") != "kms-ws-master-key" or doc.get("version") != 1:
            raise ValueError("unknown format")
        secret = base64.b64decode(doc["key"], validate=True)
        if len(secret) != 32:
            raise ValueError("not a 256-bit key")
        return _master(str(doc["key_id"]), secret)
    except (ValueError, KeyError, TypeError) as exc:
        raise MasterKeyError(f"master key {path} is unreadable: {exc}") from None


def load_or_create(path: Path) -> MasterKey:
    return load(path) if path.exists() else create(path)
