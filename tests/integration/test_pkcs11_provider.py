"""The PKCS#11 master-key provider on a real SoftHSM2 token: keys are generated in the
token and cannot be read out; sealing runs in the token; a tampered value does not open."""

from __future__ import annotations

import os
import secrets

import pkcs11
import pytest
from pkcs11 import Attribute

from kms_ws.crypto import sealing
from kms_ws.crypto.master_key import Keyring, MasterKeyError
from kms_ws.crypto.pkcs11_provider import Pkcs11Provider

from ..support import softhsm

pytestmark = pytest.mark.needs("softhsm2")


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    module = softhsm.module_path()
    before = os.environ.get("SOFTHSM2_CONF")
    softhsm.configure(tmp_path_factory.mktemp("hsm"))
    yield Pkcs11Provider(module, softhsm.new_token(), softhsm.PIN)
    if before is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = before


def test_master_key_is_generated_in_the_token_and_never_leaves_it(provider) -> None:
    key_id = provider.create()
    assert key_id in provider.key_ids()
    obj = provider._key(key_id)
    assert obj[Attribute.SENSITIVE] is True and obj[Attribute.EXTRACTABLE] is False
    assert obj[Attribute.TOKEN] is True
    with pytest.raises(pkcs11.exceptions.AttributeSensitive):
        obj[Attribute.VALUE]


def test_sealing_runs_in_the_token(provider) -> None:
    ring = Keyring(provider, provider.create())
    value = secrets.token_bytes(32)
    sealed = sealing.seal(ring.aead, "k1", 1, value)
    assert value not in sealed
    assert sealing.unseal(ring.aead, "k1", 1, sealed) == value
    with pytest.raises(sealing.SealError):
        sealing.unseal(ring.aead, "k1", 2, sealed)  # bound to the row's version
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(sealing.SealError):
        sealing.unseal(ring.aead, "k1", 1, tampered)


def test_destroyed_or_unknown_keys_are_reported(provider) -> None:
    key_id = provider.create()
    provider.destroy(key_id)
    assert key_id not in provider.key_ids()
    with pytest.raises(MasterKeyError, match=key_id):
        provider.open(key_id)
