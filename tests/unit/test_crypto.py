"""Sealing at rest, passwords, the master-key file."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kms_ws.crypto import master_key, sealing
from kms_ws.crypto.passwords import hash_password, verify_password
from kms_ws.crypto.random import generate_key, random_bytes


def test_sealed_value_opens_only_for_its_key_id_and_version() -> None:
    mk = AESGCM(AESGCM.generate_key(256))
    value = os.urandom(32)
    sealed = sealing.seal(mk, "key-a", 1, value)
    assert value not in sealed
    assert sealing.unseal(mk, "key-a", 1, sealed) == value
    with pytest.raises(sealing.SealError):
        sealing.unseal(mk, "key-b", 1, sealed)  # moved to another row
    with pytest.raises(sealing.SealError):
        sealing.unseal(mk, "key-a", 2, sealed)  # replayed under another version
    with pytest.raises(sealing.SealError):
        sealing.unseal(AESGCM(AESGCM.generate_key(256)), "key-a", 1, sealed)
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    with pytest.raises(sealing.SealError):
        sealing.unseal(mk, "key-a", 1, bytes(tampered))


def test_two_seals_of_one_value_differ() -> None:
    mk = AESGCM(AESGCM.generate_key(256))
    assert sealing.seal(mk, "k", 1, b"x" * 32) != sealing.seal(mk, "k", 1, b"x" * 32)


def test_password_hash_is_salted_scrypt() -> None:
    h1, h2 = hash_password("correct horse"), hash_password("correct horse")
    assert h1.startswith("scrypt$") and h1 != h2 and "correct horse" not in h1
    assert verify_password("correct horse", h1)
    assert not verify_password("wrong horse", h1)
    assert not verify_password("correct horse", "garbage")


def test_random_and_key_generation() -> None:
    assert len(random_bytes(100)) == 100 and random_bytes(32) != random_bytes(32)
    assert len(generate_key(512)) == 64
    with pytest.raises(ValueError):
        generate_key(100)


def test_master_key_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "master.key"
    created = master_key.create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    loaded = master_key.load(path)
    assert loaded.key_id == created.key_id
    sealed = sealing.seal(created.aead, "k", 1, b"v" * 16)
    assert sealing.unseal(loaded.aead, "k", 1, sealed) == b"v" * 16
    with pytest.raises(FileExistsError):
        master_key.create(path)  # never overwritten
    path.chmod(0o640)
    with pytest.raises(master_key.MasterKeyError, match="readable by others"):
        master_key.load(path)
    path.chmod(0o600)
    for text in ("{}", "[]", '"key"', "null"):  # JSON, but not a master-key object
        path.write_text(text)
        with pytest.raises(master_key.MasterKeyError, match="unreadable"):
            master_key.load(path)
    with pytest.raises(master_key.MasterKeyError, match="kms-ws init"):
        master_key.load(tmp_path / "missing.key")
