"""Wrapping-key material for tests: self-signed RSA certificates, PEM files, openssl runs,
and a zeep plugin that keeps the raw KeyBlobs of responses."""

from __future__ import annotations

import base64
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from zeep import Plugin

from kms_ws.client import PrivateKeyHolder
from kms_ws.xmlns import KMS

_K = f"{{{KMS}}}"


def make_holder(key_id: str, directory: Path, days: int = 30) -> PrivateKeyHolder:
    """An RSA-2048 key and self-signed certificate; PEM files KEY_ID.key/.crt in directory."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, key_id)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=2) if days < 0 else now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=days))
            .sign(key, hashes.SHA256()))
    (directory / f"{key_id}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (directory / f"{key_id}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return PrivateKeyHolder(key_id, key, cert)


def openssl_open(wrapping_type: str, data: bytes, directory: Path, *,
                 kek: tuple[str, bytes] | None = None, holder_id: str | None = None) -> bytes:
    """Decrypt one blob layer with the openssl command line; fails on a non-zero exit
    (openssl writes plaintext before it checks a GCM tag, so output is used only on 0)."""
    blob = directory / "blob.der"
    blob.write_bytes(data)
    if wrapping_type in ("aes-key-wrap", "aes-key-wrap-pad"):
        assert kek is not None
        pad = wrapping_type.endswith("pad")
        cipher = {16: "aes128", 24: "aes192", 32: "aes256"}[len(kek[1])]
        args = ["openssl", "enc", "-d", f"-id-{cipher}-wrap" + ("-pad" if pad else ""),
                "-K", kek[1].hex(), "-iv", "A65959A6" if pad else "A6A6A6A6A6A6A6A6",
                "-in", str(blob)]
    elif kek is not None:
        args = ["openssl", "cms", "-decrypt", "-binary", "-inform", "DER", "-in", str(blob),
                "-secretkey", kek[1].hex(), "-secretkeyid", kek[0].encode().hex()]
    else:
        args = ["openssl", "cms", "-decrypt", "-binary", "-inform", "DER", "-in", str(blob),
                "-recip", str(directory / f"{holder_id}.crt"),
                "-inkey", str(directory / f"{holder_id}.key")]
    r = subprocess.run(args, capture_output=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout


class BlobCapture(Plugin):  # type: ignore[misc]
    """Keeps every KeyBlob of every response, as the raw element values."""

    def __init__(self) -> None:
        self.blobs: list[dict[str, Any]] = []

    def ingress(self, envelope: Any, http_headers: dict, operation: Any) -> tuple[Any, dict]:
        for b in envelope.iter(_K + "KeyBlob"):
            fields = {c.tag[len(_K):]: c.text for c in b}
            fields["Data"] = base64.b64decode(fields["Data"])
            self.blobs.append(fields)
        return envelope, http_headers
