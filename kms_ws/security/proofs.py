"""What proves a caller, without XML: how a message signature names its key (`KeyRef`),
the registered key that verifies it (`VerificationKey`), and a PEP's own proof (§4.6,
`PepProof`) checked over its canonical bytes.

The service authenticates with these; the wire formats that carry them stay in the
transport layers: the WS-Security signature itself (security.wssecurity, which verifies
with a `VerificationKey`) and the kms:PepCredential header (security.pep_proof signs it,
codec.kms reads it).

A PEP signs, with its registered credential (an X.509 certificate's key: ECDSA or
RSA-SHA256; or its SymmetricKey: HMAC-SHA256), the exclusive c14n of

    <kms:PepProof><kms:Operation/><kms:PepId/><kms:KeyId/>?(bound fields)*<kms:MessageID/>
    <kms:Created/></kms:PepProof>

built from the request: the operation, the PEP, the key asked for (GetKey by id), the
request fields the operation binds besides (`bound`: the WS-Management requests made for
a PEP bind their update type and NotifyTo, see service.pep_auth), the request's
wsa:MessageID and the proof's creation time. That element has only text children, so
its canonical form is written here as text (`proof_input`), as exclusive c14n writes it:
the one namespace declaration on the root, text with &, <, > and CR escaped. It cannot be
moved to another request, PEP or key, and the replay cache refuses a second use.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ..domain.errors import MessageExpired, SignatureInvalid, UnsupportedAlgorithm
from ..xmlns import KMS
from .settings import SecuritySettings


@dataclass(frozen=True)
class KeyRef:
    """How a signature names its key: a certificate sent as a token, a certificate the
    receiver holds named by its thumbprint, or a name."""

    certificate: bytes | None = None  # DER
    key_name: str | None = None
    thumbprint: bytes | None = None  # SHA-1 of the DER (names it; proves nothing)


@dataclass(frozen=True)
class VerificationKey:
    """A registered key that verifies a signature, and the endpoint it is registered to.
    fingerprint: the SHA-256 (hex) of the registered certificate (DER) or HMAC secret,
    by which the service checks, in the request's own unit of work, that the key which
    verified a message is still the endpoint's."""

    signer_id: str
    cert: x509.Certificate | None = None
    hmac_key: bytes | None = field(default=None, repr=False)
    fingerprint: str | None = field(default=None, repr=False)


def secret_fingerprint(secret: bytes) -> str:
    """The fingerprint of an HMAC secret (a certificate's is its DER's SHA-256)."""
    return hashlib.sha256(secret).hexdigest()


# ---- a PEP's own proof (§4.6) ---------------------------------------------------------

HMAC_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
ALGORITHMS = (HMAC_SHA256, RSA_SHA256, ECDSA_SHA256)

Bound = Sequence[tuple[str, str]]  # (element name, text): further request fields signed


@dataclass(frozen=True)
class PepProof:
    """A kms:PepCredential header as received, with the request's wsa:MessageID."""

    pep_id: str
    created: datetime
    created_text: str  # as signed
    algorithm: str
    signature: bytes = field(repr=False)
    message_id: str | None = None


def _escaped(text: str) -> str:
    """Text content as exclusive c14n writes it."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") \
        .replace("\r", "&#xD;")


def proof_input(operation: str, pep_id: str, key_id: str | None, message_id: str,
                created: str, bound: Bound = ()) -> bytes:
    """The canonical bytes a PEP signs (exclusive c14n of a kms:PepProof element)."""
    parts = [f'<kms:PepProof xmlns:kms="{KMS}">']
    for name, text in (("Operation", operation), ("PepId", pep_id), ("KeyId", key_id),
                       *bound, ("MessageID", message_id), ("Created", created)):
        if text is not None:
            parts.append(f"<kms:{name}>{_escaped(text)}</kms:{name}>")
    parts.append("</kms:PepProof>")
    return "".join(parts).encode()


def proof_digest(operation: str, proof: PepProof, key_id: str | None,
                 bound: Bound = ()) -> str:
    """The replay-cache entry of a proof: what was signed (not the signature bytes, which
    ECDSA lets anyone re-randomise)."""
    return hashlib.sha256(proof_input(operation, proof.pep_id, key_id, proof.message_id or "",
                                      proof.created_text, bound)).hexdigest()


def verify_pep_proof(key: VerificationKey, proof: PepProof, operation: str,
                     key_id: str | None, settings: SecuritySettings, now: datetime,
                     bound: Bound = ()) -> datetime:
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
    _verify_public(key.cert, proof, data)
    return until


def _verify_public(cert: x509.Certificate, proof: PepProof, data: bytes) -> None:
    pub = cert.public_key()
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
