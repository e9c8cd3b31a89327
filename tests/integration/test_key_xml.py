"""kms:Key as text (kms_ws.codec.key_xml) is already in exclusive-c14n form: what lxml's
canonicalisation makes of it after a parse is the same text, so a page spliced into a
signed Body digests as a verifier recomputes it. Characters XML cannot carry are refused."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier

from kms_ws.codec import key_xml
from kms_ws.codec import kms as codec
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
from kms_ws.security import wssecurity
from kms_ws.security.certificates import self_signed
from kms_ws.security.settings import SecuritySettings
from kms_ws.security.xml import Spliced, splice
from kms_ws.service import messages as m
from kms_ws.soap import envelope
from kms_ws.wsman.addressing import Addressing
from kms_ws.xmlns import KMS, SOAP, WSSE

from ..support.encoded import encode_result

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


@pytest.mark.parametrize("more", [False, True])
def test_a_spliced_getkey_response_verifies_as_sent(more: bool) -> None:
    """GetKey's response is written as text and spliced into the signed envelope: the
    bytes sent verify (our verifier and signxml, from the bytes), and they read as the
    whole response element encode_result gives."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed(key, "spliced")
    result = m.GetKeyResult((_key(AWKWARD), _key("plain")), more=more)
    answer, spliced = codec.encode_response("GetKey", result)
    assert len(spliced) == 1
    signing = wssecurity.SigningKey(key, cert, by_thumbprint=True)
    now = datetime.now(UTC).replace(tzinfo=None)
    data = envelope.response_parts(f"{KMS}/GetKeyResponse", Addressing(message_id="uuid:1"),
                                   [answer], [], lambda env, parts: wssecurity.sign(
                                       env, signing, now=now, ttl_seconds=300,
                                       spliced=parts, must_understand=False), spliced)
    received = etree.fromstring(data)
    verified = wssecurity.verify(received, lambda ref: wssecurity.VerificationKey(
        "server", cert), SecuritySettings(), now)
    XMLVerifier().verify(data, x509_cert=cert, expect_config=SignatureConfiguration(
        location=f"./{{{SOAP}}}Header/{{{WSSE}}}Security/", expect_references=6))
    body = verified.body[0]
    assert etree.tostring(body, method="c14n", exclusive=True) == etree.tostring(
        encode_result("GetKey", result), method="c14n", exclusive=True)
    assert body.findtext(f"{{{KMS}}}Key/{{{KMS}}}Description") == AWKWARD
    assert (body.find(f"{{{KMS}}}More") is not None) is more
