"""§5.3 wrapping policies decide the layers of a delivery, applied with the recipients'
registered wrapping keys (the one decision in domain.wrapping.decide)."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path

import pytest

from kms_ws.client import Kek, KmsClient, KmsFault, PepUnwrapper

from ..support.server import ServerProcess
from ..support.wrapping import BlobCapture, make_holder

pytestmark = pytest.mark.e2e


def _policy(admin: KmsClient, mode: str, kind: str, target_kind: str, target: str) -> dict:
    p = admin.admin_create("WrappingPolicy", {"Name": f"w-{uuid.uuid4().hex[:10]}",
                                              "WrappingType": kind, "WrappingMode": mode})
    admin.admin_associate("WrappingPolicy", p["PolicyId"], target_kind, target)
    return admin.admin_edit("WrappingPolicy", {**admin.admin_get("WrappingPolicy",
                                                                 p["PolicyId"]),
                                               "State": "Enforcing"})


@pytest.fixture()
def kek_client(server: ServerProcess, client_factory, validator):  # type: ignore[no-untyped-def]
    _, name, password = client_factory()
    kek = Kek(f"kek-{uuid.uuid4().hex[:8]}", secrets.token_bytes(32))
    capture = BlobCapture()
    with KmsClient(server.url, name, password, plugins=[validator, capture],
                   wrapping_keys=[kek]) as c:
        c.register_wrapping_values({kek.key_id: kek.secret})
        yield c, capture


def test_a_key_policy_sets_the_mode_and_overrides_the_request(admin: KmsClient,
                                                              kek_client) -> None:
    c, _ = kek_client
    key = c.create_key()
    assert key.wrapping_type == "aes-key-wrap-pad"  # the KEK's default, no policy yet
    _policy(admin, "cms-kek", "Symmetric", "Key", key.key_id)
    got = c.get_key(key.key_id)
    assert got.wrapping_type == "cms-kek" and got.value == key.value
    with pytest.raises(KmsFault) as err:
        c.get_key(key.key_id, wrapping_type="aes-key-wrap")
    assert err.value.error_code == "E_UNSUPPORTED_WRAPPING" and err.value.supported == \
        ("cms-kek",)
    with pytest.raises(KmsFault) as err:  # a policy is never bypassed by asking for none
        c.get_key(key.key_id, wrapping_type="none")
    assert err.value.supported == ("cms-kek",)


def test_a_policy_the_recipient_cannot_satisfy_is_refused(admin: KmsClient,
                                                          kek_client) -> None:
    c, _ = kek_client
    key = c.create_key()
    _policy(admin, "cms-rsa-oaep", "Asymmetric", "Key", key.key_id)  # needs a certificate
    with pytest.raises(KmsFault) as err:
        c.get_key(key.key_id)
    assert err.value.error_code == "E_WRAPPING_UNAVAILABLE"
    assert err.value.supported == ("cms-rsa-oaep",)


def test_a_pep_policy_sets_the_inner_layer(admin: KmsClient, kek_client,
                                           tmp_path: Path) -> None:
    c, capture = kek_client
    pep_id = c.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:8]}")
    pep_cert = make_holder("pep-policy-cert", tmp_path)
    c.register_wrapping_values({pep_cert.key_id: pep_cert.certificate}, endpoint_id=pep_id)
    _policy(admin, "cms-auth-enveloped", "Asymmetric", "Pep", pep_id)
    key = c.create_key(pep_id=pep_id)
    blob = capture.blobs[-1]
    assert blob["InnerWrappingType"] == "cms-auth-enveloped"  # not the default cms-rsa-oaep
    assert blob["WrappingType"] == "aes-key-wrap-pad" and key.value is None
    value = PepUnwrapper([pep_cert]).open(key.pep_blob)
    assert PepUnwrapper([pep_cert]).open(c.get_key(key.key_id, pep_id=pep_id).pep_blob) == value
