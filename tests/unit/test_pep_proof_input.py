"""The bytes a PEP signs (§4.6, security.proofs): fixed here because a PEP implemented
elsewhere must rebuild them exactly — and a proof over one request must not verify for
another."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import pytest
from lxml import etree

from kms_ws.codec.kms import decode_pep_proof
from kms_ws.domain.errors import SignatureInvalid
from kms_ws.security import pep_proof, proofs
from kms_ws.security.proofs import VerificationKey
from kms_ws.security.settings import SecuritySettings
from kms_ws.security.wssecurity import SigningKey
from kms_ws.xmlns import KMS

SUBSCRIBE = "http://schemas.xmlsoap.org/ws/2004/08/eventing/Subscribe"
ENUMERATE = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
K = f"{{{KMS}}}"
P = '<kms:PepProof xmlns:kms="urn:kms-ws:p1619.3:1">'


def test_getkey_form_is_unchanged() -> None:
    assert proofs.proof_input("GetKey", "p", "k", "uuid:m", "2026-01-01T00:00:00Z") == (
        P + "<kms:Operation>GetKey</kms:Operation><kms:PepId>p</kms:PepId><kms:KeyId>k"
        "</kms:KeyId><kms:MessageID>uuid:m</kms:MessageID><kms:Created>2026-01-01T00:00:00Z"
        "</kms:Created></kms:PepProof>").encode()


def test_subscribe_form_binds_type_and_notify_to_in_order() -> None:
    got = proofs.proof_input(SUBSCRIBE, "p", None, "uuid:m", "2026-01-01T00:00:00Z",
                             (("UpdateType", "Keys"), ("NotifyTo", "http://h/n?a=1&b=2")))
    assert got == (
        P + f"<kms:Operation>{SUBSCRIBE}</kms:Operation><kms:PepId>p</kms:PepId>"
        "<kms:UpdateType>Keys</kms:UpdateType><kms:NotifyTo>http://h/n?a=1&amp;b=2"
        "</kms:NotifyTo><kms:MessageID>uuid:m</kms:MessageID><kms:Created>"
        "2026-01-01T00:00:00Z</kms:Created></kms:PepProof>").encode()


@pytest.mark.parametrize("text", [
    "a&b<c>d", "]]>", "\r\n\t x", "'quoted' \"both\"", "&amp; &#xD;", "é → ∑ 𝄞", ""])
def test_the_text_form_is_exclusive_c14n(text: str) -> None:
    """proof_input writes the element as text: byte for byte what exclusive c14n (lxml)
    makes of it, whatever the request's strings hold."""
    root = etree.Element(K + "PepProof", nsmap={"kms": KMS})
    for name in ("Operation", "PepId", "KeyId", "UpdateType", "MessageID", "Created"):
        etree.SubElement(root, K + name).text = f"{name}:{text}"
    expected = etree.tostring(root, method="c14n", exclusive=True, with_comments=False)
    assert proofs.proof_input(f"Operation:{text}", f"PepId:{text}", f"KeyId:{text}",
                              f"MessageID:{text}", f"Created:{text}",
                              (("UpdateType", f"UpdateType:{text}"),)) == expected


@pytest.mark.parametrize("operation,bound", [
    (SUBSCRIBE, (("UpdateType", "Keys"),)),                        # Enumerate's proof
    (ENUMERATE, (("UpdateType", "AllKeys"),)),                     # another type
    (ENUMERATE, (("UpdateType", "Keys"), ("NotifyTo", "http://h/"))),
])
def test_a_proof_verifies_only_for_what_it_was_made_for(operation: str,
                                                         bound: tuple[tuple[str, str], ...]
                                                         ) -> None:
    secret = secrets.token_bytes(32)
    now = datetime.now(UTC).replace(tzinfo=None)
    made = (("UpdateType", "Keys"),)
    el = pep_proof.sign(SigningKey(secret), ENUMERATE, "p", None, "uuid:m", now, made)
    proof = decode_pep_proof(el, "uuid:m")
    key = VerificationKey("p", hmac_key=secret)
    settings = SecuritySettings()
    assert proofs.verify_pep_proof(key, proof, ENUMERATE, None, settings, now, made) > now
    with pytest.raises(SignatureInvalid):
        proofs.verify_pep_proof(key, proof, operation, None, settings, now, bound)
