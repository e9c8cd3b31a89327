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


@pytest.mark.parametrize(("kind", "mode"), [("Asymmetric", "aes-key-wrap-pad"),
                                             ("Symmetric", "cms-rsa-oaep"),
                                             ("Signature", "cms-auth-enveloped")])
def test_a_wrapping_type_that_does_not_fit_the_mode_is_refused(admin: KmsClient, kind: str,
                                                               mode: str) -> None:
    """§5.3.1: WRAPPING_TYPE (asymmetric / symmetric / signature) and WRAPPING_MODE agree,
    or the policy is not made; Signature is a type no mode of this server serves."""
    name = f"w-{uuid.uuid4().hex[:10]}"
    with pytest.raises(KmsFault) as err:
        admin.admin_create("WrappingPolicy", {"Name": name, "WrappingType": kind,
                                              "WrappingMode": mode})
    assert err.value.error_code == "E_INVALID_PARAMETER" and kind in str(err.value)
    assert name not in [p["Name"] for p in admin.admin_list("WrappingPolicy",
                                                            max_items=1000)[0]]


def test_an_edit_that_breaks_the_type_is_refused_and_changes_nothing(admin: KmsClient) -> None:
    p = admin.admin_create("WrappingPolicy", {"Name": f"w-{uuid.uuid4().hex[:10]}",
                                              "WrappingType": "Asymmetric",
                                              "WrappingMode": "cms-rsa-oaep"})
    with pytest.raises(KmsFault) as err:
        admin.admin_edit("WrappingPolicy", {**p, "WrappingMode": "cms-kek"})
    assert err.value.error_code == "E_INVALID_PARAMETER"
    assert err.value.supported == ("cms-rsa-oaep", "cms-auth-enveloped")
    assert admin.admin_get("WrappingPolicy", p["PolicyId"]) == p


def test_a_key_is_not_delivered_under_a_wrapping_key_of_another_type(
        admin: KmsClient, server: ServerProcess, client_factory, validator,  # type: ignore[no-untyped-def]
        tmp_path: Path) -> None:
    """A Symmetric policy in cms-auth-enveloped wraps under a KEK only: a client holding
    only a certificate (which that mode could also serve) gets a precise fault, audited."""
    _, name, password = client_factory()
    holder = make_holder("cert-only", tmp_path)
    kek = Kek(f"kek-{uuid.uuid4().hex[:8]}", secrets.token_bytes(32))
    with KmsClient(server.url, name, password, plugins=[validator],
                   wrapping_keys=[holder, kek]) as c:
        c.register_wrapping_values({holder.key_id: holder.certificate})
        key = c.create_key()
        assert key.wrapping_type == "cms-rsa-oaep"  # the certificate's default
        _policy(admin, "cms-auth-enveloped", "Symmetric", "Key", key.key_id)
        with pytest.raises(KmsFault) as err:
            c.get_key(key.key_id)
        assert err.value.error_code == "E_WRAPPING_UNAVAILABLE"
        assert "Symmetric" in str(err.value) and err.value.supported == ("cms-auth-enveloped",)
        records = admin.admin_audit(key_id=key.key_id)
        assert records[-1]["Event"] == "E_WRAPPING_UNAVAILABLE" and \
            records[-1]["Result"] in ("Denied", "Failed")
        assert [r["Event"] for r in records].count("KeyDelivered") == 0
        # with a KEK registered, the key goes under it, not under the certificate
        c.register_wrapping_values({kek.key_id: kek.secret})
        got = c.get_key(key.key_id)
        assert got.wrapping_type == "cms-auth-enveloped" and got.value == key.value


def test_a_client_group_carries_a_wrapping_policy(admin: KmsClient, server: ServerProcess,
                                                  client_factory, validator) -> None:  # type: ignore[no-untyped-def]
    _, name, password = client_factory()
    kek = Kek(f"kek-{uuid.uuid4().hex[:8]}", secrets.token_bytes(32))
    capture = BlobCapture()
    group = admin.admin_create("ClientGroup", {"Name": f"g-{uuid.uuid4().hex[:8]}",
                                               "Type": "Static"})
    admin.admin_associate("ClientGroup", group["GroupId"], "Client",
                          admin.admin_get("Client", name)["ClientId"])
    with KmsClient(server.url, name, password, plugins=[validator, capture],
                   wrapping_keys=[kek]) as c:
        c.register_wrapping_values({kek.key_id: kek.secret})
        key = c.create_key()
        assert key.wrapping_type == "aes-key-wrap-pad"  # the KEK's default, no policy yet
        _policy(admin, "cms-kek", "Symmetric", "ClientGroup", group["GroupId"])
        got = c.get_key(key.key_id)
        assert got.wrapping_type == "cms-kek" and got.value == key.value
        assert capture.blobs[-1]["WrappingType"] == "cms-kek"
