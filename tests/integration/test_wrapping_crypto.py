"""Key blobs on real crypto: every WrappingType round-trips, a corrupted blob never opens
to garbage, the strict CMS parser refuses what we do not write, and blobs that the
openssl command line writes open here (the reverse interop direction)."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import pytest
from asn1crypto import cms

from kms_ws.client import KeyUnwrapError, PepUnwrapper
from kms_ws.client.unwrap import PepBlob
from kms_ws.crypto.wrapping import (
    CertRecipient,
    Kek,
    UnwrapError,
    check_value,
    unwrap,
    wrap,
)

from ..support.wrapping import make_holder

CASES = [("aes-key-wrap", "kek"), ("aes-key-wrap-pad", "kek"), ("cms-kek", "kek"),
         ("cms-auth-enveloped", "kek"), ("cms-rsa-oaep", "cert"),
         ("cms-auth-enveloped", "cert")]


@pytest.fixture(scope="module")
def holder(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp("pki")
    return make_holder("pep-cert", d), d


def _pair(kind: str, holder):  # type: ignore[no-untyped-def]
    if kind == "kek":
        kek = Kek("kek-1", secrets.token_bytes(32))
        return kek, kek
    h = holder[0]
    return CertRecipient(h.key_id, h.certificate), h


@pytest.mark.parametrize("wrapping_type,kind", CASES)
def test_every_corrupted_byte_fails_authentication(wrapping_type, kind, holder) -> None:
    key = secrets.token_bytes(32)
    recipient, opener = _pair(kind, holder)
    blob = wrap(wrapping_type, key, recipient)
    helper = PepUnwrapper([opener])
    assert helper.open(PepBlob("k", wrapping_type, opener.key_id, 32, blob,
                               check_value(key))) == key
    step = 1 if kind == "kek" else 7  # RSA decryption per byte is slow; sample the blob
    for i in range(0, len(blob), step):
        bad = bytearray(blob)
        bad[i] ^= 0x01
        with pytest.raises(KeyUnwrapError):
            helper.open(PepBlob("k", wrapping_type, opener.key_id, 32, bytes(bad),
                                check_value(key)))


def test_truncated_and_extended_blobs_are_refused(holder) -> None:
    kek = Kek("kek-1", secrets.token_bytes(32))
    for t in ("cms-kek", "cms-auth-enveloped", "aes-key-wrap-pad"):
        blob = wrap(t, secrets.token_bytes(32), kek)
        for bad in (blob[:-1], blob + b"\0", blob[:10], b""):
            with pytest.raises(UnwrapError):
                unwrap(t, bad, kek)


def test_wrong_kek_and_wrong_kind_name_the_key(holder) -> None:
    kek = Kek("kek-1", secrets.token_bytes(32))
    blob = wrap("cms-kek", b"k" * 32, kek)
    with pytest.raises(UnwrapError, match="kek-1"):
        unwrap("cms-kek", blob, Kek("kek-1", secrets.token_bytes(32)))
    with pytest.raises(UnwrapError, match="for KEK kek-1, not kek-2"):
        unwrap("cms-kek", blob, Kek("kek-2", kek.secret))
    with pytest.raises(UnwrapError, match="private key"):
        unwrap("cms-kek", blob, holder[0])
    with pytest.raises(UnwrapError, match="does not match"):
        unwrap("cms-rsa-oaep", blob, kek)  # EnvelopedData, but a KEK recipient


def _reencode(blob: bytes, mutate) -> bytes:  # type: ignore[no-untyped-def]
    info = cms.ContentInfo.load(blob)
    mutate(info["content"])
    return cms.ContentInfo({"content_type": info["content_type"].native,
                            "content": info["content"]}).dump(force=True)


def test_strict_parser_refuses_structures_we_do_not_write(holder) -> None:
    kek = Kek("kek-1", secrets.token_bytes(32))
    blob = wrap("cms-kek", b"k" * 32, kek)

    def two_recipients(body) -> None:  # type: ignore[no-untyped-def]
        body["recipient_infos"] = [body["recipient_infos"][0], body["recipient_infos"][0]]

    def wrong_version(body) -> None:  # type: ignore[no-untyped-def]
        body["version"] = "v0"

    for mutate, reason in ((two_recipients, "exactly one"), (wrong_version, "must be v2")):
        with pytest.raises(UnwrapError, match=reason):
            unwrap("cms-kek", _reencode(blob, mutate), kek)
    gcm = wrap("cms-auth-enveloped", b"k" * 32, kek)

    def short_tag(body) -> None:  # type: ignore[no-untyped-def]
        body["mac"] = body["mac"].native[:12]

    with pytest.raises(UnwrapError, match="16-byte tag"):
        unwrap("cms-auth-enveloped", _reencode(gcm, short_tag), kek)
    with pytest.raises(UnwrapError, match="content type"):
        unwrap("cms-kek", gcm, kek)


@pytest.mark.needs("openssl")
def test_blobs_written_by_openssl_open_here(holder, tmp_path: Path) -> None:
    h, d = holder
    key = secrets.token_bytes(32)
    (tmp_path / "key.bin").write_bytes(key)
    kek = Kek("kek-9", secrets.token_bytes(32))
    runs = {
        "cms-kek": (["-aes256", "-secretkey", kek.secret.hex(), "-secretkeyid",
                     kek.key_id.encode().hex()], kek),
        "cms-rsa-oaep": (["-aes256", "-recip", str(d / "pep-cert.crt"), "-keyopt",
                          "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256",
                          "-keyopt", "rsa_mgf1_md:sha256"], h),
        "cms-auth-enveloped": (["-aes-256-gcm", "-recip", str(d / "pep-cert.crt"),
                                "-keyopt", "rsa_padding_mode:oaep", "-keyopt",
                                "rsa_oaep_md:sha256", "-keyopt", "rsa_mgf1_md:sha256"], h),
    }
    for wrapping_type, (args, opener) in runs.items():
        r = subprocess.run(["openssl", "cms", "-encrypt", "-binary", "-outform", "DER",
                            "-in", str(tmp_path / "key.bin"), *args],
                           capture_output=True, timeout=60, check=False)
        assert r.returncode == 0, r.stderr
        assert unwrap(wrapping_type, r.stdout, opener) == key, wrapping_type
