"""`wssecurity.sign` writes the wsse:Security header as text and takes the canonical bytes
of the Timestamp and the SignedInfo from that text (kms_ws.security.signature_text), not
from lxml's c14n. These tests prove the equality it relies on: in every envelope shape,
the canonical text equals lxml's exclusive c14n of the element as placed, and where lxml
renames our prefixes when placing the header (the guard `keeps_prefixes` says so) the
signature is made over the placed elements instead. Each signed envelope is also verified
by our verifier and by signxml from its serialised bytes."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier

from kms_ws.security import signature_text, wssecurity
from kms_ws.security import xml as secure_xml
from kms_ws.security.certificates import self_signed
from kms_ws.security.settings import SecuritySettings
from kms_ws.xmlns import DS, EXC_C14N, KMS, SOAP, WSA, WSMAN, WSSE, WSU

D, U = f"{{{DS}}}", f"{{{WSU}}}"
SETTINGS = SecuritySettings()
KEY = ec.generate_private_key(ec.SECP256R1())
CERT = self_signed(KEY, "text")
BODY = f'<kms:GetKey xmlns:kms="{KMS}"><kms:KeyId>k &amp; &lt;1&gt;</kms:KeyId></kms:GetKey>'


def _env(root_ns: str, prefix: str = "s", relates: bool = True) -> etree._Element:
    p = f"{prefix}:" if prefix else ""
    decl = f'xmlns:{prefix}="{SOAP}"' if prefix else f'xmlns="{SOAP}"'
    rel = f'<wsa:RelatesTo xmlns:wsa="{WSA}">uuid:{uuid.uuid4()}</wsa:RelatesTo>' \
        if relates else ""
    return etree.fromstring(f"<{p}Envelope {decl} {root_ns}><{p}Header>{rel}</{p}Header>"
                            f"<{p}Body>{BODY}</{p}Body></{p}Envelope>")


# (root namespace declarations, SOAP prefix, prefixes kept as written)
SHAPES = {
    "client request": ("", "s", True),
    "server response (wsu on the root)": (f'xmlns:wsu="{WSU}"', "s", True),
    "zeep's prefix": ("", "soap-env", True),
    "SOAP as default namespace": ("", "", True),
    "our prefixes bound elsewhere": ('xmlns:wsu="urn:other" xmlns:ds="urn:other2"', "s",
                                     True),
    "all our namespaces on the root": (f'xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}" '
                                       f'xmlns:ds="{DS}" xmlns:ec="{EXC_C14N}"', "s", True),
    "wsu under another prefix": (f'xmlns:u="{WSU}"', "s", False),
    "ds under another prefix": (f'xmlns:dsig="{DS}"', "s", False),
    "ds as a default namespace": (f'xmlns="{DS}"', "s", False),
}


def _c14n(el: etree._Element) -> bytes:
    return etree.tostring(el, method="c14n", exclusive=True, with_comments=False)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _verify_both(data: bytes, key: wssecurity.SigningKey, references: int) -> None:
    """Our verifier and signxml accept the message, signed over Body, Timestamp and
    each header block (`references` in all)."""
    root = secure_xml.parse(data, SETTINGS)
    verified = wssecurity.verify(root, lambda ref: wssecurity.VerificationKey("t", key.cert),
                                 SETTINGS, _now())
    assert verified.body.findtext(f".//{{{KMS}}}KeyId") == "k & <1>"
    assert verified.unsigned == () and len(verified.header) == references - 2
    config = SignatureConfiguration(location=f"./{{{SOAP}}}Header/{{{WSSE}}}Security/",
                                    expect_references=references,
                                    ignore_ambiguous_key_info=True)
    XMLVerifier().verify(data, x509_cert=key.cert, expect_config=config)


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("prefixes", [(), ("wsman",)], ids=["plain", "InclusiveNamespaces"])
def test_canonical_text_is_lxml_c14n_of_the_placed_elements(shape: str,
                                                            prefixes: tuple[str, ...]) -> None:
    root_ns, soap_prefix, kept = SHAPES[shape]
    env = _env(root_ns + (f' xmlns:wsman="{WSMAN}"' if prefixes else ""), soap_prefix)
    header = env.find(f"{{{SOAP}}}Header")
    assert signature_text.keeps_prefixes(header) is kept
    key = wssecurity.SigningKey(KEY, CERT)
    wssecurity.sign(env, key, now=_now(), ttl_seconds=300, body_prefixes=prefixes)
    ts = env.find(f".//{U}Timestamp")
    si = env.find(f".//{D}SignedInfo")
    # The text the signer digested and signed, rebuilt from what was placed ...
    ts_text = signature_text.timestamp(ts.get(f"{U}Id"), ts.findtext(f"{U}Created"),
                                       ts.findtext(f"{U}Expires"))
    refs = [(r.get("URI")[1:], tuple((r.find(f".//{{{EXC_C14N}}}InclusiveNamespaces")
                                      .get("PrefixList") or "").split())
             if r.find(f".//{{{EXC_C14N}}}InclusiveNamespaces") is not None else (),
             r.findtext(f"{D}DigestValue")) for r in si.iter(f"{D}Reference")]
    si_text = signature_text.signed_info(key.method, refs)
    # ... equals lxml's exclusive c14n of the placed elements wherever the guard holds
    # (where it does not, lxml renamed a prefix and one of them differs),
    same = (signature_text.canonical_timestamp(ts_text) == _c14n(ts),
            signature_text.canonical_signed_info(si_text) == _c14n(si))
    assert same == (True, True) if kept else False in same
    # and the digest and signature hold over the placed elements in every shape.
    digest = dict((r[0].split("-")[0], r[2]) for r in refs)["Timestamp"]
    assert base64.b64decode(digest) == hashlib.sha256(_c14n(ts)).digest()
    assert [r[1] for r in refs] == [prefixes, (), ()]
    _verify_both(etree.tostring(env), key, 3)


def test_a_spliced_body_and_a_request_without_relates_to_verify() -> None:
    # in c14n form in its place: kms is declared by the GetKey around it
    spliced = secure_xml.Spliced.new("<kms:Note>spliced &amp; signed</kms:Note>")
    env = _env("", relates=False)
    env.find(f".//{{{KMS}}}GetKey").append(etree.Element(f"{{{KMS}}}Extra"))
    env.find(f".//{{{KMS}}}Extra").text = spliced.marker
    key = wssecurity.SigningKey(KEY, CERT)
    wssecurity.sign(env, key, now=_now(), ttl_seconds=300, spliced=[spliced])
    data = secure_xml.splice(etree.tostring(env), [spliced])
    _verify_both(data, key, 2)
    body = wssecurity.verify(secure_xml.parse(data, SETTINGS),
                             lambda ref: wssecurity.VerificationKey("t", CERT),
                             SETTINGS, _now()).body
    assert body.findtext(f".//{{{KMS}}}Note") == "spliced & signed"


def test_a_key_name_is_escaped_and_an_hmac_signature_verifies() -> None:
    secret = uuid.uuid4().bytes * 2
    key = wssecurity.SigningKey(secret, None, 'name & <"odd">')
    env = _env("", relates=False)
    wssecurity.sign(env, key, now=_now(), ttl_seconds=300)
    root = secure_xml.parse(etree.tostring(env), SETTINGS)
    assert root.findtext(f".//{D}KeyName") == 'name & <"odd">'
    seen = []

    def resolve(ref: wssecurity.KeyRef) -> wssecurity.VerificationKey:
        seen.append(ref.key_name)
        return wssecurity.VerificationKey("h", None, secret)
    assert wssecurity.verify(root, resolve, SETTINGS, _now()).signer_id == "h"
    assert seen == ['name & <"odd">']


def test_ids_are_fresh_per_message_and_distinct_per_part() -> None:
    ids = []
    for _ in range(2):
        env = _env("")
        wssecurity.sign(env, wssecurity.SigningKey(KEY, CERT), now=_now(), ttl_seconds=300)
        ids += [str(v) for v in env.xpath("//@wsu:Id", namespaces={"wsu": WSU})]
    assert len(ids) == 8 and len(set(ids)) == 8


@pytest.mark.parametrize("value", ["wsman kms", 'a&b<c>"d"', "tab\there", "nl\ncr\r"])
def test_c14n_attribute_escaping_matches_lxml(value: str) -> None:
    el = etree.Element("a", b=value)
    assert _c14n(el) == f'<a b="{signature_text.c14n_attr(value)}"></a>'.encode()
