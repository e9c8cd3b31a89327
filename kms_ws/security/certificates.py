"""X.509 certificates registered for message signatures and TLS client authentication,
and the server's own signing key (P-256 by default; kept in the data directory, 0600)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from .. import durable
from ..domain.errors import InvalidParameter, SignatureInvalid
from .wssecurity import SigningKey

SERVER_KEY_FILE = "server-signing.key"
SERVER_CERT_FILE = "server-signing.pem"
MIN_RSA_BITS = 2048
_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
MIN_HMAC_KEY_BYTES = 32


def load_certificate(data: bytes) -> x509.Certificate:
    """A PEM or DER certificate with an acceptable key (RSA >= 2048, EC P-256/384/521)."""
    try:
        cert = (x509.load_pem_x509_certificate(data) if data.lstrip().startswith(b"-----")
                else x509.load_der_x509_certificate(data))
        public = cert.public_key()
    except ValueError:
        raise InvalidParameter("the credential value is not an X.509 certificate") from None
    if isinstance(public, rsa.RSAPublicKey):
        if public.key_size < MIN_RSA_BITS:
            raise InvalidParameter(f"RSA keys have at least {MIN_RSA_BITS} bits")
    elif not (isinstance(public, ec.EllipticCurvePublicKey)
              and isinstance(public.curve, _CURVES)):
        raise InvalidParameter("certificates carry an RSA or EC P-256/384/521 key")
    return cert


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def fingerprint(cert_der: bytes) -> str:
    return hashlib.sha256(cert_der).hexdigest()


def check_validity(cert: x509.Certificate, now: datetime) -> None:
    """now: naive UTC."""
    if not cert.not_valid_before_utc.replace(tzinfo=None) <= now \
            <= cert.not_valid_after_utc.replace(tzinfo=None):
        raise SignatureInvalid("the signer's certificate is not valid at this time")


def self_signed(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, common_name: str,
                days: int = 3650) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=days))
            .sign(key, hashes.SHA256()))


def create_server_key(data_dir: Path) -> None:
    """The server's response-signing key and certificate, if missing (init), each synced
    to disk with its directory entry. A key left without its certificate (a crash between
    the two) gets its certificate."""
    key_path, cert_path = data_dir / SERVER_KEY_FILE, data_dir / SERVER_CERT_FILE
    if key_path.exists():
        if cert_path.exists():
            return
        key = _server_private_key(data_dir)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
        durable.create(key_path, key.private_bytes(serialization.Encoding.PEM,
                                                   serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()), 0o600)
    cert = self_signed(key, "kms-ws response signing")
    durable.create(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def load_server_key(data_dir: Path) -> SigningKey:
    """The server's signing key. Its messages name the certificate by its thumbprint
    rather than carry it: clients pin it (GET /wsman?signing-cert) and hold it."""
    cert = x509.load_pem_x509_certificate((data_dir / SERVER_CERT_FILE).read_bytes())
    return SigningKey(_server_private_key(data_dir), cert, by_thumbprint=True)


def _server_private_key(data_dir: Path) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if (data_dir / SERVER_KEY_FILE).stat().st_mode & 0o077:
        raise ValueError(f"{data_dir / SERVER_KEY_FILE} is readable by others; chmod 600 it")
    key = serialization.load_pem_private_key((data_dir / SERVER_KEY_FILE).read_bytes(), None)
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise ValueError("the server signing key must be EC or RSA")
    return key
