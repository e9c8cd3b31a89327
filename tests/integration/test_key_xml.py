"""kms:Key as text (kms_ws.codec.key_xml) is already in exclusive-c14n form: what lxml's
canonicalisation makes of it after a parse is the same text, so a page spliced into a
signed Body digests as a verifier recomputes it. Characters XML cannot carry are refused."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest
from lxml import etree

from kms_ws.codec import key_xml
from kms_ws.domain.model import (
    AppliedPolicy,
    DataSet,
    Extensions,
    Key,
    KeyState,
    NameValue,
    SourceKind,
)
from kms_ws.domain.wrapping import KeyBlob
from kms_ws.resources import schema_dir
from kms_ws.security.xml import Spliced, splice
from kms_ws.xmlns import KMS

AWKWARD = "a&b<c>d\"e'f\tg\r\nh ]]> é ✓ 😀"


def _key(text: str, **kw) -> Key:  # type: ignore[no-untyped-def]
    return Key(key_id="0b7e1c52-5f0c-4b8e-9a57-3c1f2d7f6a10", state=KeyState.ACTIVE,
               cipher_type="2.16.840.1.101.3.4.1.46", length_bits=256, version=3,
               edit_datetime=datetime(2026, 1, 2, 3, 4, 5, 6), created_at=datetime(2026, 1, 1),
               t_cached=3600, friendly_name=text, description=text,
               t_expired=datetime(2027, 1, 1), source_kind=SourceKind.CLIENT, source_id=text,
               attributes=(NameValue(text, text),), datasets=(DataSet(text, text, 7),),
               realms=(text,), extensions=Extensions((NameValue("v", text),), ()), **kw)


@pytest.mark.parametrize("key", [
    _key(AWKWARD),
    _key("plain"),
    _key(AWKWARD, blob=KeyBlob("aes-key-wrap", 32, b"\x00\xff" * 20, "wk", check_value=b"cv")),
    _key(AWKWARD, hidden=True),
])
def test_key_text_is_its_own_exclusive_c14n(key: Key) -> None:
    text = key_xml.key_xml(key, declare=True)
    parsed = etree.fromstring(text.encode())
    assert etree.tostring(parsed, method="c14n", exclusive=True).decode() == text
    assert parsed.findtext(f"{{{KMS}}}EditDateTime") == "2026-01-02T03:04:05.000006Z"
    if not key.hidden:  # and the text survives the round trip, CR included
        assert parsed.findtext(f"{{{KMS}}}Description") == key.description


def test_characters_xml_cannot_carry_are_refused() -> None:
    for bad in ("a\x00b", "a\x1bb", "a\ufffeb", "a\ud800b"):
        with pytest.raises(ValueError):
            key_xml.key_xml(_key(bad))


def test_splice_places_text_once_or_refuses() -> None:
    part = Spliced.new("<kms:X xmlns:kms=\"urn:x\">é</kms:X>")
    assert splice(f"<a>{part.marker}</a>".encode(), [part]) == \
        "<a><kms:X xmlns:kms=\"urn:x\">é</kms:X></a>".encode()
    for data in (b"<a></a>", f"<a>{part.marker}{part.marker}</a>".encode()):
        with pytest.raises(ValueError):
            splice(data, [part])


def test_caching_type_goes_to_every_receiver_and_applied_policies_need_read() -> None:
    """§5.6 CACHING_TYPE is what a receiver must do with the key, so a Reference-only
    receiver gets it too; the policies that applied describe the key: not shown to it."""
    applied = (AppliedPolicy("CachingPolicy", "0b7e1c52-5f0c-4b8e-9a57-3c1f2d7f6a11"),
               AppliedPolicy("WrappingPolicy", "0b7e1c52-5f0c-4b8e-9a57-3c1f2d7f6a12"))
    schema = etree.XMLSchema(etree.parse(str(schema_dir() / "kms.xsd")))
    for hidden in (False, True):
        key = dataclasses.replace(_key("plain", caching_type="Persistent",
                                       applied_policies=applied, hidden=hidden),
                                  realms=("realm://example.com/a",), source_id=None)
        el = etree.fromstring(key_xml.key_xml(key, declare=True).encode())
        schema.assertValid(el)
        assert el.findtext(f"{{{KMS}}}CachingType") == "Persistent"
        shown = [(p.findtext(f"{{{KMS}}}Kind"), p.findtext(f"{{{KMS}}}PolicyId"))
                 for p in el.iterfind(f"{{{KMS}}}AppliedPolicies/{{{KMS}}}AppliedPolicy")]
        assert shown == ([] if hidden else [(p.kind, p.policy_id) for p in applied])
