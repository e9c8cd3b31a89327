"""Master keys: the keys that seal every stored key value and KEK.

A provider holds master keys by id: the file provider (this module) or the PKCS#11
provider (`pkcs11_provider`, the key never leaves the token). The `Keyring` opens them by
id on demand, so a worker finds a master key created by a rotation in another process.
Which master key seals new values is recorded in the database (kms_meta
`master_key_current`), read in the same write transaction as the insert.

File provider: `<data-dir>/master.key` (the first) and `master-<id>.key` (after
rotations), each 0600, JSON: {"format": "kms-ws-master-key", "version": 1, "key_id",
"key": base64} or, passphrase-protected, version 2 with the key sealed by AES-256-GCM
under scrypt(passphrase) ({"kdf": {"n", "r", "p", "salt"}, "nonce", "sealed"}).
A file readable by group or others is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .. import durable
from .random import random_bytes
from .sealing import Aead

FILE_NAME = "master.key"
_CONTEXT_LABEL = b"kms-ws/enumeration-context/1".ljust(32, b".")
_FORMAT = "kms-ws-master-key"
_SCRYPT = {"n": 2**15, "r": 8, "p": 1}


class MasterKeyError(Exception):
    pass


class MasterKeyProvider(Protocol):
    name: str

    def key_ids(self) -> list[str]: ...

    def create(self) -> str: ...

    def open(self, key_id: str) -> Aead: ...

    def destroy(self, key_id: str) -> None: ...


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _kdf(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(passphrase.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32,
                          maxmem=128 * 1024 * 1024)


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


def create(path: Path, passphrase: str | None = None, key_id: str | None = None) -> MasterKey:
    """A new master-key file (0600, never overwritten; it and its directory entry synced
    to disk); passphrase-protected if given."""
    key_id = key_id or str(uuid.uuid4())
    secret = random_bytes(32)
    doc: dict[str, Any] = {"format": _FORMAT, "version": 1, "key_id": key_id}
    if passphrase:
        salt, nonce = random_bytes(16), random_bytes(12)
        kek = _kdf(passphrase, salt, **_SCRYPT)
        doc.update(version=2, kdf={**_SCRYPT, "salt": _b64(salt)}, nonce=_b64(nonce),
                   sealed=_b64(AESGCM(kek).encrypt(nonce, secret, key_id.encode())))
    else:
        doc["key"] = _b64(secret)
    durable.create(path, json.dumps(doc).encode("ascii"), 0o600)
    return _master(key_id, secret)


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def _read(path: Path) -> dict[str, Any]:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise MasterKeyError(f"no master key at {path}; run 'kms-ws init'") from None
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise MasterKeyError(f"master key {path} is readable by others; chmod 600 it")
    try:
        doc = json.loads(path.read_bytes())
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        if doc.get("format") != _FORMAT or doc.get("version") not in (1, 2):
            raise ValueError("unknown format")
        str(uuid.UUID(doc["key_id"]))
        return doc
    except (ValueError, KeyError, TypeError) as exc:
        raise MasterKeyError(f"master key {path} is unreadable: {exc}") from None


def load(path: Path, passphrase: str | None = None) -> MasterKey:
    doc = _read(path)
    try:
        if doc["version"] == 1:
            secret = base64.b64decode(doc["key"], validate=True)
        else:
            secret = _unlock(doc, path, passphrase)
    except (ValueError, KeyError, TypeError) as exc:
        raise MasterKeyError(f"master key {path} is unreadable: {exc}") from None
    if len(secret) != 32:
        raise MasterKeyError(f"master key {path} is not a 256-bit key")
    return _master(str(doc["key_id"]), secret)


def _unlock(doc: dict[str, Any], path: Path, passphrase: str | None) -> bytes:
    if not passphrase:
        raise MasterKeyError(f"master key {path} is passphrase-protected; set "
                             "KMS_WS_MASTER_PASSPHRASE")
    kdf = doc["kdf"]
    kek = _kdf(passphrase, base64.b64decode(kdf["salt"]), int(kdf["n"]), int(kdf["r"]),
               int(kdf["p"]))
    try:
        return AESGCM(kek).decrypt(base64.b64decode(doc["nonce"]),
                                   base64.b64decode(doc["sealed"]), doc["key_id"].encode())
    except InvalidTag:
        raise MasterKeyError(f"wrong passphrase for master key {path}") from None


class FileProvider:
    """Master-key files in the data directory: master.key, then master-<id>.key."""

    name = "file"

    def __init__(self, data_dir: Path, passphrase: str | None = None) -> None:
        self.data_dir = data_dir
        self.passphrase = passphrase

    def _files(self) -> dict[str, Path]:
        return {str(_read(p)["key_id"]): p for p in sorted(self.data_dir.glob("master*.key"))}

    def files(self) -> dict[str, Path]:
        """Each master key's file, by key id (what a backup with key material carries)."""
        return self._files()

    def key_ids(self) -> list[str]:
        return list(self._files())

    def create(self) -> str:
        key_id = str(uuid.uuid4())
        path = self.data_dir / (f"master-{key_id}.key" if self._files() else FILE_NAME)
        return create(path, self.passphrase, key_id).key_id

    def open(self, key_id: str) -> Aead:
        path = self._path(key_id)
        if path is None:
            raise MasterKeyError(f"master key {key_id} is not in {self.data_dir}")
        return load(path, self.passphrase).aead

    def _path(self, key_id: str) -> Path | None:
        """The file of `key_id`: the one named for it (master-<id>.key, or master.key for
        the first), read alone, so that opening a key never reads another key's file, which
        a rotation's end may be destroying (zeroed, then unlinked); by every file's content
        only when no name fits."""
        named = [self.data_dir / FILE_NAME]
        if _is_uuid(key_id):
            named.insert(0, self.data_dir / f"master-{key_id}.key")
        for path in named:
            if path.is_file() and str(_read(path)["key_id"]) == key_id:
                return path
        return self._files().get(key_id)

    def destroy(self, key_id: str) -> None:
        path = self._files().get(key_id)
        if path is not None:
            size = path.stat().st_size
            with open(path, "r+b") as f:  # overwrite before unlinking
                f.write(b"\0" * size)
                f.flush()
                os.fsync(f.fileno())
            path.unlink()
            durable.sync_directory(path.parent)


class Keyring:
    """The master keys of one process, opened on demand by id (thread-safe)."""

    def __init__(self, provider: MasterKeyProvider, default_id: str) -> None:
        self.provider = provider
        self.key_id = default_id  # the current key when this process started
        self._open: dict[str, Aead] = {}
        self._mac: dict[str, bytes] = {}
        self._lock = threading.Lock()

    @property
    def aead(self) -> Aead:
        return self.aead_for(self.key_id)

    def context_mac_key_for(self, key_id: str) -> bytes:
        """The HMAC key of stateless enumeration contexts, derived from master key `key_id`
        through its AEAD (so a PKCS#11 key that never leaves its token can derive it too):
        AES-GCM of a fixed label under a nonce no sealing draws (random 96-bit nonces).
        Every process and node sharing the master key derives the same key."""
        with self._lock:
            found = self._mac.get(key_id)
        if found is None:
            out = self.aead_for(key_id).encrypt(bytes(12), _CONTEXT_LABEL, b"kms-ws/derive/1")
            found = hashlib.sha256(out).digest()
            with self._lock:
                self._mac[key_id] = found
        return found

    def aead_for(self, key_id: str | None) -> Aead:
        if key_id is None:
            raise MasterKeyError("a sealed value names no master key")
        with self._lock:
            found = self._open.get(key_id)
            if found is None:
                found = self._open[key_id] = self.provider.open(key_id)
            return found
