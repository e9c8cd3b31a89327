"""Who a key is wrapped for and who opens it, shared by both halves of key wrapping: the
AES key wrap (crypto.wrapping) and CMS (crypto.cms). A recipient is a `Kek` (symmetric,
with its WrappingKeyId) or a `CertRecipient` (an X.509 certificate, with its
WrappingKeyId); the opener is a `Kek` or a `PrivateKeyHolder`."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa


class UnwrapError(Exception):
    """A blob that does not open: wrong key, corrupted or forged data, unknown structure."""


@dataclass(frozen=True)
class Kek:
    """A symmetric key-encryption key (16, 24 or 32 bytes) and its WrappingKeyId."""

    key_id: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) not in (16, 24, 32):
            raise ValueError(f"KEK {self.key_id} must be 128, 192 or 256 bits")


@dataclass(frozen=True)
class CertRecipient:
    key_id: str
    certificate: x509.Certificate

    def __post_init__(self) -> None:
        pub = self.certificate.public_key()
        if not isinstance(pub, rsa.RSAPublicKey) or pub.key_size < 2048:
            raise ValueError(f"certificate {self.key_id} must hold an RSA key of >= 2048 bits")

    @property
    def rsa_key(self) -> rsa.RSAPublicKey:
        pub = self.certificate.public_key()
        assert isinstance(pub, rsa.RSAPublicKey)  # made sure of in __post_init__
        return pub


@dataclass(frozen=True)
class PrivateKeyHolder:
    """The recipient side of a CertRecipient: the private key and its certificate."""

    key_id: str
    private_key: rsa.RSAPrivateKey = field(repr=False)
    certificate: x509.Certificate


Recipient = Kek | CertRecipient
Opener = Kek | PrivateKeyHolder
