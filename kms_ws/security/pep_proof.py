"""§4.6 a PEP's own proof for a request a KMS client makes on its behalf.

The PEP signs, with its registered credential (an X.509 certificate's key: ECDSA or
RSA-SHA256; or its SymmetricKey: HMAC-SHA256), the exclusive c14n of

    <kms:PepProof><kms:Operation/><kms:PepId/><kms:KeyId/>?(bound fields)*<kms:MessageID/>
    <kms:Created/></kms:PepProof>

built from the request: the operation, the PEP, the key asked for (GetKey by id), the
request fields the operation binds besides (`bound`: the WS-Management requests made for
a PEP bind their update type and NotifyTo, see service.pep_auth), the request's
wsa:MessageID and the proof's creation time. The client carries it as a
kms:PepCredential SOAP header (PepId, Created, SignatureMethod, SignatureValue); it cannot
be moved to another request, PEP or key, and the replay cache refuses a second use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree

from ..domain.errors import MessageExpired, SignatureInvalid, UnsupportedAlgorithm
from ..xmlns import KMS
from .settings import SecuritySettings
from .wssecurity import SigningKey, VerificationKey, _raw_signature, _time

_K = f"{{{KMS}}}"
HMAC_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
ALGORITHMS = (HMAC_SHA256, RSA_SHA256, ECDSA_SHA256)


@dataclass(frozen=True)
class PepProof:
    """A kms:PepCredential header as received, with the request's wsa:MessageID."""

    pep_id: str
    created: datetime
    created_text: str  # as signed
    algorithm: str
    signature: bytes = field(repr=False)
    message_id: str | None = None


Bound = Sequence[tuple[str, str]]  # (element name, text): further request fields signed


def proof_input(operation: str, pep_id: str, key_id: str | None, message_id: str,
                created: str, bound: Bound = ()) -> bytes:
    """The canonical bytes a PEP signs (exclusive c14n of a kms:PepProof element)."""
    root = etree.Element(_K + "PepProof", nsmap={"kms": KMS})
    for name, text in (("Operation", operation), ("PepId", pep_id), ("KeyId", key_id),
                       *bound, ("MessageID", message_id), ("Created", created)):
        if text is not None:
            etree.SubElement(root, _K + name).text = text
    return etree.tostring(root, method="c14n", exclusive=True, with_comments=False)


def sign(key: SigningKey, operation: str, pep_id: str, key_id: str | None, message_id: str,
         now: datetime, bound: Bound = ()) -> etree._Element:
    """The kms:PepCredential header for one request (the PEP side)."""
    if key.algorithm.value not in ALGORITHMS:
        raise ValueError(f"a PEP proof is signed with SHA-256, not {key.algorithm.value}")
    created = _time(now)
    value = _raw_signature(key, proof_input(operation, pep_id, key_id, message_id, created,
                                            bound))
    el = etree.Element(_K + "PepCredential", nsmap={"kms": KMS})
    for name, text in (("PepId", pep_id), ("Created", created),
                       ("SignatureMethod", key.algorithm.value),
                       ("SignatureValue", base64.b64encode(value).decode())):
        etree.SubElement(el, _K + name).text = text
    return el


def digest(operation: str, proof: PepProof, key_id: str | None, bound: Bound = ()) -> str:
    """The replay-cache entry of a proof: what was signed (not the signature bytes, which
    ECDSA lets anyone re-randomise)."""
    return hashlib.sha256(proof_input(operation, proof.pep_id, key_id, proof.message_id or "",
                                      proof.created_text, bound)).hexdigest()


def verify(key: VerificationKey, proof: PepProof, operation: str, key_id: str | None,
           settings: SecuritySettings, now: datetime, bound: Bound = ()) -> datetime:
    """Check the proof's window and signature; returns until when it is remembered."""
    skew = timedelta(seconds=settings.clock_skew_seconds)
    if proof.created > now + skew:
        raise MessageExpired("the PEP proof is created in the future")
    until = proof.created + timedelta(seconds=settings.timestamp_ttl_seconds) + skew
    if until <= now:
        raise MessageExpired("the PEP proof has expired")
    data = proof_input(operation, proof.pep_id, key_id, proof.message_id or "",
                       proof.created_text, bound)
    if key.cert is None:
        if proof.algorithm != HMAC_SHA256:
            raise UnsupportedAlgorithm("this PEP's SymmetricKey proves with hmac-sha256")
        assert key.hmac_key is not None
        if not hmac.compare_digest(hmac.new(key.hmac_key, data, hashlib.sha256).digest(),
                                   proof.signature):
            raise SignatureInvalid("the PEP proof does not verify")
        return until
    _verify_public(key, proof, data)
    return until


def _verify_public(key: VerificationKey, proof: PepProof, data: bytes) -> None:
    assert key.cert is not None
    pub = key.cert.public_key()
    try:
        if isinstance(pub, rsa.RSAPublicKey) and proof.algorithm == RSA_SHA256:
            pub.verify(proof.signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(pub, ec.EllipticCurvePublicKey) and proof.algorithm == ECDSA_SHA256:
            size = (pub.curve.key_size + 7) // 8
            if len(proof.signature) != 2 * size:
                raise SignatureInvalid("the PEP proof's ECDSA value has the wrong length")
            r = int.from_bytes(proof.signature[:size], "big")
            s = int.from_bytes(proof.signature[size:], "big")
            pub.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        else:
            raise UnsupportedAlgorithm(f"signature method {proof.algorithm} does not fit the "
                                       "PEP's registered certificate")
    except InvalidSignature:
        raise SignatureInvalid("the PEP proof does not verify") from None
