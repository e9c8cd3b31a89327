"""The XML-Signature profile of kms_ws.security.wssecurity, in process (real keys, real
c14n): what it signs verifies with an independent implementation (signxml), what
signxml signs it accepts, and each cryptographic or algorithm check refuses on its own.
Position and wrapping checks are tested end to end in test_wrapping.py."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import (
    SignatureConfiguration,
    SignatureReference,
    XMLSigner,
    XMLVerifier,
    methods,
)
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm

from kms_ws.domain.errors import (
    MessageSecurityError,
    SignatureInvalid,
    UnsupportedAlgorithm,
)
from kms_ws.security import wssecurity
from kms_ws.security.certificates import self_signed
from kms_ws.security.settings import SecuritySettings
from kms_ws.xmlns import DS, SOAP, WSSE, WSU

from ..support.envelopes import envelope

D = f"{{{DS}}}"
EXC = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
SETTINGS = SecuritySettings()
BODY = "<kms:GetRandomBytes><kms:Length>16</kms:Length></kms:GetRandomBytes>"


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def signed(key: wssecurity.SigningKey) -> etree._Element:
    env = etree.fromstring(envelope(BODY, op="GetRandomBytes"))
    wssecurity.sign(env, key, now=now(), ttl_seconds=300)
    return etree.fromstring(etree.tostring(env))  # as received: parsed from bytes


def check_verify(env: etree._Element, key: wssecurity.VerificationKey
                 ) -> wssecurity.VerifiedMessage:
    return wssecurity.verify(env, lambda ref: key, SETTINGS, now())


def ec_signer() -> tuple[wssecurity.SigningKey, wssecurity.VerificationKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed(key, "profile")
    return wssecurity.SigningKey(key, cert), wssecurity.VerificationKey("signer", cert)


def _sig(env: etree._Element) -> etree._Element:
    return env.find(f"{{{SOAP}}}Header/{{{WSSE}}}Security/{D}Signature")


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_signxml_verifies_what_we_sign_and_we_verify_what_signxml_signs(kind: str) -> None:
    key = ec.generate_private_key(ec.SECP384R1()) if kind == "ec" else \
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = self_signed(key, "profile")
    ours = signed(wssecurity.SigningKey(key, cert))
    # Body, Timestamp and the header blocks: wsa:To, Action, MessageID, ReplyTo
    config = SignatureConfiguration(location=f"./{{{SOAP}}}Header/{{{WSSE}}}Security/",
                                    expect_references=6, require_x509=True)
    results = XMLVerifier().verify(ours, x509_cert=cert, expect_config=config)
    assert b"GetRandomBytes" in b"".join(r.signed_data for r in results)

    # signxml signs the same parts afresh: our verifier accepts it and returns its Body
    sec = ours.find(f"{{{SOAP}}}Header/{{{WSSE}}}Security")
    old = _sig(ours)
    refs = [SignatureReference(r.get("URI"), c14n_method=EXC)
            for r in old.iter(D + "Reference")]
    new = XMLSigner(method=methods.detached,
                    signature_algorithm=wssecurity.SigningKey(key, cert).algorithm,
                    digest_algorithm=DigestAlgorithm.SHA384, c14n_algorithm=EXC).sign(
        ours, key=key, reference_uri=refs, key_info=old.find(D + "KeyInfo"))
    sec.replace(old, new)
    theirs = etree.fromstring(etree.tostring(ours))
    verified = check_verify(theirs, wssecurity.VerificationKey("signer", cert))
    assert verified.body.findtext(".//{urn:kms-ws:p1619.3:1}Length") == "16"


def _edit_body(env: etree._Element) -> None:
    env.find(".//{urn:kms-ws:p1619.3:1}Length").text = "4096"


def _edit_signature_value(env: etree._Element) -> None:
    el = _sig(env).find(D + "SignatureValue")
    raw = bytearray(base64.b64decode(el.text))
    raw[5] ^= 1
    el.text = base64.b64encode(bytes(raw)).decode()


def _truncate_signature_value(env: etree._Element) -> None:
    el = _sig(env).find(D + "SignatureValue")
    el.text = base64.b64encode(base64.b64decode(el.text)[:-1]).decode()


def _edit_digest(env: etree._Element) -> None:
    el = _sig(env).find(f"{D}SignedInfo/{D}Reference/{D}DigestValue")
    el.text = base64.b64encode(bytes(32)).decode()


def _edit_timestamp(env: etree._Element) -> None:
    ts = env.find(f".//{{{WSU}}}Timestamp/{{{WSU}}}Expires")
    ts.text = (now() + timedelta(seconds=200)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _hmac_output_length(env: etree._Element) -> None:
    etree.SubElement(_sig(env).find(f"{D}SignedInfo/{D}SignatureMethod"),
                     D + "HMACOutputLength").text = "80"


def _extra_signed_info_child(env: etree._Element) -> None:
    etree.SubElement(_sig(env).find(D + "SignedInfo"), D + "Object")


def _rsa_method_for_ec_key(env: etree._Element) -> None:
    _sig(env).find(f"{D}SignedInfo/{D}SignatureMethod").set(
        "Algorithm", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")


def _hmac_method_for_ec_key(env: etree._Element) -> None:
    _sig(env).find(f"{D}SignedInfo/{D}SignatureMethod").set(
        "Algorithm", "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256")


def _digest_not_base64(env: etree._Element) -> None:
    _sig(env).find(f"{D}SignedInfo/{D}Reference/{D}DigestValue").text = "%%%"


@pytest.mark.parametrize("tamper,error", [
    (_edit_body, SignatureInvalid),
    (_edit_timestamp, SignatureInvalid),
    (_edit_signature_value, SignatureInvalid),
    (_truncate_signature_value, SignatureInvalid),
    (_edit_digest, SignatureInvalid),
    (_hmac_output_length, UnsupportedAlgorithm),
    (_extra_signed_info_child, MessageSecurityError),
    (_rsa_method_for_ec_key, UnsupportedAlgorithm),
    (_hmac_method_for_ec_key, UnsupportedAlgorithm),
    (_digest_not_base64, MessageSecurityError),
], ids=lambda v: getattr(v, "__name__", "").lstrip("_"))
def test_each_check_refuses_on_its_own(tamper: Callable[[etree._Element], None],
                                       error: type[Exception]) -> None:
    signer, verification = ec_signer()
    env = signed(signer)
    check_verify(etree.fromstring(etree.tostring(env)), verification)  # genuine: accepted
    tamper(env)
    with pytest.raises(error):
        check_verify(etree.fromstring(etree.tostring(env)), verification)


def test_a_certificate_outside_its_validity_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired")])
    start = datetime.now(UTC) - timedelta(days=30)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    env = signed(wssecurity.SigningKey(key, cert))
    with pytest.raises(SignatureInvalid, match="not valid at this time"):
        check_verify(env, wssecurity.VerificationKey("signer", cert))


def test_hmac_needs_the_full_secret_and_an_hmac_method() -> None:
    secret = uuid.uuid4().bytes * 2
    env = signed(wssecurity.SigningKey(secret, None, "hmac-client"))
    assert check_verify(env, wssecurity.VerificationKey("h", None, secret)).signer_id == "h"
    with pytest.raises(SignatureInvalid):
        flipped = secret[:-1] + bytes([secret[-1] ^ 1])
        check_verify(env, wssecurity.VerificationKey("h", None, flipped))
    _, ec_key = ec_signer()
    with pytest.raises(UnsupportedAlgorithm):  # an HMAC-signed message for a certificate
        check_verify(env, ec_key)


def _by_thumbprint() -> tuple[etree._Element, wssecurity.VerificationKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed(key, "profile")
    env = signed(wssecurity.SigningKey(key, cert, by_thumbprint=True))
    return env, wssecurity.VerificationKey("signer", cert)


def test_a_thumbprint_names_the_certificate_and_the_resolver_decides() -> None:
    """KeyInfo by ThumbprintSHA1: the resolver gets the thumbprint (never a certificate
    from the message) and the key it returns verifies; signxml verifies it too."""
    env, vk = _by_thumbprint()
    seen = []

    def resolve(ref):  # type: ignore[no-untyped-def]
        seen.append(ref)
        return vk
    wssecurity.verify(env, resolve, SETTINGS, now())
    assert seen == [wssecurity.KeyRef(thumbprint=wssecurity.thumbprint_sha1(
        vk.cert.public_bytes(Encoding.DER)))]
    config = SignatureConfiguration(location=f"./{{{SOAP}}}Header/{{{WSSE}}}Security/",
                                    expect_references=6)
    XMLVerifier().verify(env, x509_cert=vk.cert, expect_config=config)


@pytest.mark.parametrize("change,error", [
    (lambda ki: ki.set("ValueType", wssecurity.X509V3), "ThumbprintSHA1"),
    (lambda ki: ki.set("EncodingType", "urn:hex"), "ThumbprintSHA1"),
    (lambda ki: setattr(ki, "text", base64.b64encode(bytes(32)).decode()), "20 bytes"),
    (lambda ki: setattr(ki, "text", "not base64!"), "not base64"),
    (lambda ki: ki.addnext(etree.Element(f"{{{WSSE}}}KeyIdentifier")), "alone"),
])
def test_a_malformed_thumbprint_reference_is_refused(change: Callable[[etree._Element], None],
                                                     error: str) -> None:
    env, vk = _by_thumbprint()
    change(env.find(f".//{{{WSSE}}}KeyIdentifier"))
    with pytest.raises(MessageSecurityError, match=error):
        check_verify(env, vk)
