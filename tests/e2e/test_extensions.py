"""§4.1/§4.3 VENDOR_SPECIFIC_EXTENSIONS and APPLICATION_EXTENSIONS: stored on templates,
inherited by keys created byTemplate, returned with the Key and KeyTemplate elements."""

from __future__ import annotations

import uuid

import pytest

from kms_ws.client import KmsClient, KmsFault

from ..support import db
from ..support.server import ServerProcess

pytestmark = pytest.mark.e2e

VENDOR = {"Extension": [{"Name": "acme.com/tape-format", "Value": "LTO-9"},
                        {"Name": "acme.com/slot", "Value": "7"}]}
APP = {"Extension": [{"Name": "backup-app/job", "Value": "nightly"}]}


def _template(admin: KmsClient, **extra: object) -> dict:
    return admin.admin_create("KeyTemplate", {
        "FriendlyName": f"t-{uuid.uuid4().hex[:10]}", "CipherType": "2.16.840.1.101.3.4.1.46",
        "KeyLength": 256, **extra})


def test_template_extensions_are_stored_and_inherited_by_keys(admin: KmsClient,
                                                              client: KmsClient) -> None:
    tpl = _template(admin, VendorSpecificExtensions=VENDOR, ApplicationExtensions=APP)
    shown = admin.admin_get("KeyTemplate", tpl["TemplateId"])
    assert [e["Name"] for e in shown["VendorSpecificExtensions"]["Extension"]] == \
        ["acme.com/slot", "acme.com/tape-format"]
    assert shown["ApplicationExtensions"] == APP
    key = client.create_key(template=tpl["FriendlyName"])
    want = {"VendorSpecificExtensions": {"acme.com/tape-format": "LTO-9", "acme.com/slot": "7"},
            "ApplicationExtensions": {"backup-app/job": "nightly"}}
    assert key.extensions == want
    assert client.get_key(key.key_id).extensions == want  # GetKey's Key element
    admin_key = admin.admin_get("Key", key.key_id)
    assert admin_key["ApplicationExtensions"] == APP
    # a key without a template has none; an edit of the template does not reach old keys
    assert client.create_key().extensions == {}
    admin.admin_edit("KeyTemplate", {**shown, "ApplicationExtensions": {"Extension": [
        {"Name": "backup-app/job", "Value": "weekly"}]}})
    assert client.get_key(key.key_id).extensions == want
    assert client.create_key(template=tpl["TemplateId"]).extensions[
        "ApplicationExtensions"] == {"backup-app/job": "weekly"}


def test_key_edit_replaces_its_extensions(admin: KmsClient, client: KmsClient) -> None:
    key = client.create_key(template=_template(admin, ApplicationExtensions=APP)["TemplateId"])
    doc = admin.admin_get("Key", key.key_id)
    edited = admin.admin_edit("Key", {**doc, "ApplicationExtensions": None,
                                      "VendorSpecificExtensions": VENDOR})
    assert edited["Version"] == doc["Version"] + 1
    assert "ApplicationExtensions" not in edited
    assert client.get_key(key.key_id).extensions == {
        "VendorSpecificExtensions": {"acme.com/tape-format": "LTO-9", "acme.com/slot": "7"}}


def test_duplicate_extension_name_is_refused_and_changes_nothing(
        admin: KmsClient, server: ServerProcess) -> None:
    before = db.count(server.data_dir, "key_templates")
    with pytest.raises(KmsFault) as err:
        _template(admin, VendorSpecificExtensions={"Extension": [
            {"Name": "x", "Value": "1"}, {"Name": "x", "Value": "2"}]})
    assert err.value.error_code == "E_INVALID_PARAMETER"
    assert db.count(server.data_dir, "key_templates") == before
