"""Key wrapping for delivery: one wrap and one unwrap per KeyBlob WrappingType (§4.2).

    aes-key-wrap        RFC 3394 under a symmetric KEK (key length a multiple of 8, >= 16)
    aes-key-wrap-pad    RFC 5649 under a symmetric KEK (any length)
    cms-kek             CMS EnvelopedData, KEKRecipientInfo (AES key wrap), AES-256-CBC
    cms-rsa-oaep        CMS EnvelopedData, KeyTransRecipientInfo RSA-OAEP-SHA256, AES-256-CBC
    cms-auth-enveloped  CMS AuthEnvelopedData, AES-256-GCM, KEK or RSA-OAEP recipient

This module owns the AES key wrap half and picks the half by type; crypto.cms owns the CMS
half. Both take the recipients of crypto.recipients: a `Kek` (symmetric, with its
WrappingKeyId) or a `CertRecipient` (an X.509 certificate, with its WrappingKeyId) to wrap
for, a `Kek` or a `PrivateKeyHolder` to open with.
Every unwrap either returns the exact plaintext or raises `UnwrapError`; the EnvelopedData
types (AES-CBC, not authenticated by themselves) are checked by the key check value
(`check_value`) the blob carries.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography import x509
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap,
    aes_key_wrap_with_padding,
)

from ..domain.wrapping import (  # noqa: F401
    AES_KW,
    AES_KWP,
    ALL_TYPES,
    CMS_AUTH,
    CMS_KEK,
    CMS_RSA_OAEP,
    NONE,
    TYPES_FOR,
    WRAPPED_TYPES,
    WrappingKeyKind,
)
from . import cms
from .recipients import (  # noqa: F401 - the recipients are part of this module's interface
    CertRecipient,
    Kek,
    Opener,
    PrivateKeyHolder,
    Recipient,
    UnwrapError,
)

SYMMETRIC_TYPES = TYPES_FOR[WrappingKeyKind.SYMMETRIC]
CERTIFICATE_TYPES = TYPES_FOR[WrappingKeyKind.CERTIFICATE]


def check_value(key: bytes) -> bytes:
    """A 16-byte key check value: HMAC-SHA256 under the key itself of a fixed label.
    One-way; lets the final recipient verify an unwrapped key bit-exactly."""
    return hmac.new(key, b"kms-ws key check value 1", hashlib.sha256).digest()[:16]


def verify_check_value(key: bytes, expected: bytes | None, key_id: str | None) -> None:
    if expected is not None and not hmac.compare_digest(check_value(key), expected):
        raise UnwrapError(f"the key unwrapped with {key_id} fails its check value: "
                          "wrong wrapping key or corrupted blob")


def wrap(wrapping_type: str, plaintext: bytes, recipient: Recipient) -> bytes:
    if wrapping_type in (AES_KW, AES_KWP, CMS_KEK) and not isinstance(recipient, Kek):
        raise ValueError(f"{wrapping_type} needs a symmetric KEK")
    if wrapping_type == AES_KW:
        assert isinstance(recipient, Kek)
        if len(plaintext) % 8 or len(plaintext) < 16:
            raise ValueError("aes-key-wrap needs a multiple of 8 bytes, at least 16; "
                             "use aes-key-wrap-pad")
        return aes_key_wrap(recipient.secret, plaintext)
    if wrapping_type == AES_KWP:
        assert isinstance(recipient, Kek)
        return aes_key_wrap_with_padding(recipient.secret, plaintext)
    if wrapping_type == CMS_KEK:
        assert isinstance(recipient, Kek)
        return cms.enveloped(plaintext, recipient)
    if wrapping_type == CMS_RSA_OAEP:
        if not isinstance(recipient, CertRecipient):
            raise ValueError("cms-rsa-oaep needs a certificate")
        return cms.enveloped(plaintext, recipient)
    if wrapping_type == CMS_AUTH:
        return cms.auth_enveloped(plaintext, recipient)
    raise ValueError(f"unknown wrapping type {wrapping_type}")


def unwrap(wrapping_type: str, data: bytes, opener: Opener) -> bytes:
    try:
        if wrapping_type in (AES_KW, AES_KWP):
            if not isinstance(opener, Kek):
                raise UnwrapError(f"{wrapping_type} opens with a symmetric KEK, "
                                  f"not the private key {opener.key_id}")
            fn = aes_key_unwrap if wrapping_type == AES_KW else aes_key_unwrap_with_padding
            return fn(opener.secret, data)
        if wrapping_type in (CMS_KEK, CMS_RSA_OAEP, CMS_AUTH):
            return cms.open_blob(data, opener, expect=wrapping_type)
    except InvalidUnwrap:
        raise UnwrapError(f"the blob does not open under KEK {opener.key_id}: wrong key "
                          "or corrupted data (integrity check failed)") from None
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        raise UnwrapError(f"the blob does not open with {opener.key_id}: malformed "
                          f"({type(exc).__name__})") from None
    raise UnwrapError(f"unknown wrapping type {wrapping_type}")


def load_certificate(key_id: str, der: bytes) -> CertRecipient:
    """A DER X.509 certificate as a wrapping recipient (RSA >= 2048 bits)."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        raise ValueError(f"wrapping value {key_id} is not a DER X.509 certificate") from None
    return CertRecipient(key_id, cert)
