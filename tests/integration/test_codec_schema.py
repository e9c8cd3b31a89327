"""What the codec writes is valid against schemas/, and what it reads round-trips."""

from __future__ import annotations

from datetime import datetime

from lxml import etree

from kms_ws.app import message_validator
from kms_ws.codec import kms as codec
from kms_ws.domain.model import DataSet, Key, KeyState, NameValue
from kms_ws.service import messages as m
from kms_ws.xmlns import KMS

from ..support.encoded import encode_result
from ..support.schema_check import validate_element


def test_encoded_key_response_is_schema_valid() -> None:
    key = Key(key_id="0f8fad5b-d9cb-469f-a165-70867728950e", state=KeyState.ACTIVE,
              cipher_type="2.16.840.1.101.3.4.1.46", length_bits=256, version=3,
              edit_datetime=datetime(2026, 1, 2, 3, 4, 5, 600), created_at=datetime(2026, 1, 1),
              t_cached=60, friendly_name="k", attributes=(NameValue("a", "b"),),
              datasets=(DataSet("volume", "V1", 2),), realms=("realm://example.com/r",),
              value=b"\x00" * 32)
    el = encode_result("GetKey", m.GetKeyResult((key,), more=True))
    validate_element(el)
    assert message_validator().validate(el)
    assert el.findtext(f"{{{KMS}}}Key/{{{KMS}}}EditDateTime") == "2026-01-02T03:04:05.000600Z"


def test_get_key_request_decodes() -> None:
    el = etree.fromstring(
        f'<kms:GetKey xmlns:kms="{KMS}"><kms:FriendlyName>n</kms:FriendlyName>'
        "<kms:AttributeAssociations><kms:Attribute><kms:Name>site</kms:Name><kms:Value>x"
        "</kms:Value></kms:Attribute></kms:AttributeAssociations><kms:Usage>Decrypt</kms:Usage>"
        "</kms:GetKey>")
    assert message_validator().validate(el)
    req = codec.DECODERS["GetKey"](el)
    assert req.friendly_name == "n" and req.attributes == (NameValue("site", "x"),)
    assert req.usage.value == "Decrypt" and req.max_keys == 100
