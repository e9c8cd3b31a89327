"""CMS (RFC 5652, RFC 5083/5084) key blobs, built with asn1crypto around `cryptography`.

Writes EnvelopedData (KEKRecipientInfo with AES key wrap, or KeyTransRecipientInfo with
RSA-OAEP-SHA256 by issuer and serial number; AES-256-CBC content) and AuthEnvelopedData
(AES-256-GCM, either recipient). OpenSSL 3 `openssl cms -decrypt` opens all of them.

The parser is strict: exactly the structures we write — one recipient, the RFC 5652
version numbers, the allowed algorithms and parameters, no originator info and no
attributes, no trailing bytes. Anything else is refused before any decryption.
"""

from __future__ import annotations

import functools
import secrets
from typing import Any

from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_wrap,
)

from ..domain.wrapping import CMS_AUTH, CMS_KEK, CMS_RSA_OAEP
from .recipients import (
    Kek,
    Opener,
    PrivateKeyHolder,
    Recipient,
    UnwrapError,
)

_WRAP_BY_LEN = {16: "aes128_wrap", 24: "aes192_wrap", 32: "aes256_wrap"}
_OAEP = asym_padding.OAEP(mgf=asym_padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(),
                          label=None)
# Built once: asn1crypto is slow to build these from dicts on every blob.
_OAEP_ALG = cms.KeyEncryptionAlgorithm.load(cms.KeyEncryptionAlgorithm({
    "algorithm": "rsaes_oaep",
    "parameters": {"hash_algorithm": {"algorithm": "sha256"},
                   "mask_gen_algorithm": {"algorithm": "mgf1",
                                          "parameters": {"algorithm": "sha256"}}}}).dump())
_CEK_LEN = 32


# ---- writing ------------------------------------------------------------------------

def _recipient_info(cek: bytes, recipient: Recipient) -> cms.RecipientInfo:
    if isinstance(recipient, Kek):
        return cms.RecipientInfo("kekri", cms.KEKRecipientInfo({
            "version": "v4",
            "kekid": {"key_identifier": recipient.key_id.encode("utf-8")},
            "key_encryption_algorithm": {"algorithm": _WRAP_BY_LEN[len(recipient.secret)]},
            "encrypted_key": aes_key_wrap(recipient.secret, cek)}))
    cert = recipient.certificate
    return cms.RecipientInfo("ktri", cms.KeyTransRecipientInfo({
        "version": "v0",
        "rid": _rid(cert.issuer.public_bytes(), cert.serial_number),
        "key_encryption_algorithm": _OAEP_ALG,
        "encrypted_key": recipient.rsa_key.encrypt(cek, _OAEP)}))


def _parsed(ri: cms.RecipientInfo) -> cms.RecipientInfo:
    """The same RecipientInfo, parsed back from its DER: asn1crypto copies and re-tags a
    freshly built ktri (explicitly tagged OAEP parameters) slowly when it is embedded."""
    return cms.RecipientInfo.load(ri.dump())


@functools.lru_cache(maxsize=256)
def _rid(issuer_der: bytes, serial: int) -> cms.RecipientIdentifier:
    """issuerAndSerialNumber, built once per certificate and kept parsed: asn1crypto
    re-encodes a freshly built Name slowly (milliseconds) on every blob otherwise."""
    built = cms.RecipientIdentifier("issuer_and_serial_number", {
        "issuer": asn1_x509.Name.load(issuer_der), "serial_number": serial})
    return cms.RecipientIdentifier.load(built.dump())


def _issuer_serial(cert: x509.Certificate) -> tuple[asn1_x509.Name, int]:
    # The issuer's DER as is (re-encoding a parsed certificate in asn1crypto is slow).
    return asn1_x509.Name.load(cert.issuer.public_bytes()), cert.serial_number


def enveloped(plaintext: bytes, recipient: Recipient) -> bytes:
    """EnvelopedData, AES-256-CBC content: v2 with a KEK recipient, v0 with RSA-OAEP."""
    cek, iv = secrets.token_bytes(_CEK_LEN), secrets.token_bytes(16)
    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(cek), modes.CBC(iv)).encryptor()
    ciphertext = enc.update(padder.update(plaintext) + padder.finalize()) + enc.finalize()
    data = cms.EnvelopedData({
        "version": "v2" if isinstance(recipient, Kek) else "v0",
        "recipient_infos": [_parsed(_recipient_info(cek, recipient))],
        "encrypted_content_info": {
            "content_type": "data",
            "content_encryption_algorithm": {"algorithm": "aes256_cbc", "parameters": iv},
            "encrypted_content": ciphertext}})
    der: bytes = cms.ContentInfo({"content_type": "enveloped_data", "content": data}).dump()
    return der


def auth_enveloped(plaintext: bytes, recipient: Recipient) -> bytes:
    """AuthEnvelopedData v0, AES-256-GCM, 12-byte nonce, 16-byte tag, no attributes."""
    cek, nonce = secrets.token_bytes(_CEK_LEN), secrets.token_bytes(12)
    sealed = AESGCM(cek).encrypt(nonce, plaintext, None)
    data = cms.AuthEnvelopedData({
        "version": "v0",
        "recipient_infos": [_parsed(_recipient_info(cek, recipient))],
        "auth_encrypted_content_info": {
            "content_type": "data",
            "content_encryption_algorithm": {
                "algorithm": "aes256_gcm",
                "parameters": algos.CcmParams({"aes_nonce": nonce, "aes_icvlen": 16})},
            "encrypted_content": sealed[:-16]},
        "mac": sealed[-16:]})
    der: bytes = cms.ContentInfo({"content_type": "authenticated_enveloped_data",
                                  "content": data}).dump()
    return der


# ---- reading ------------------------------------------------------------------------

def _refuse(reason: str) -> UnwrapError:
    return UnwrapError(f"not an acceptable CMS key blob: {reason}")


def open_blob(der: bytes, opener: Opener, expect: str) -> bytes:
    """Parse strictly, recover the content-encryption key with `opener`, decrypt."""
    try:
        info = cms.ContentInfo.load(der, strict=True)
        ctype = info["content_type"].native
        body = info["content"]
        body.native  # noqa: B018 - forces a full parse: malformed DER fails here
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError):
        # asn1crypto raises a variety of errors on malformed DER; all mean the same here.
        raise _refuse("malformed DER") from None
    want = "authenticated_enveloped_data" if expect == CMS_AUTH else "enveloped_data"
    if ctype != want:
        raise _refuse(f"content type {ctype}, expected {want} for {expect}")
    if body["originator_info"].native is not None:
        raise _refuse("originator info is not accepted")
    infos = body["recipient_infos"]
    if len(infos) != 1:
        raise _refuse(f"{len(infos)} recipients; exactly one is accepted")
    ri = infos[0]
    if expect == CMS_KEK and ri.name != "kekri" or expect == CMS_RSA_OAEP and ri.name != "ktri":
        raise _refuse(f"recipient type {ri.name} does not match {expect}")
    if ri.name not in ("kekri", "ktri"):
        raise _refuse(f"recipient type {ri.name} is not accepted")
    cek = _recover_cek(ri.chosen, ri.name, opener)
    if expect == CMS_AUTH:
        return _open_gcm(body, cek, opener.key_id)
    return _open_cbc(body, cek, ri.name, opener.key_id)


def _recover_cek(ri: core.Sequence, kind: str, opener: Opener) -> bytes:
    alg = ri["key_encryption_algorithm"]
    if kind == "kekri":
        if ri["version"].native != "v4":
            raise _refuse("KEKRecipientInfo must be version 4")
        blob_kek = ri["kekid"]["key_identifier"].native.decode("utf-8", "replace")
        if not isinstance(opener, Kek):
            raise UnwrapError(f"the blob is for KEK {blob_kek}; a private key cannot open it")
        if blob_kek != opener.key_id:
            raise UnwrapError(f"the blob is wrapped for KEK {blob_kek}, not {opener.key_id}")
        if alg["algorithm"].native != _WRAP_BY_LEN[len(opener.secret)] or \
                alg["parameters"].native is not None:
            raise _refuse(f"key wrap algorithm {alg['algorithm'].native} does not fit "
                          f"KEK {opener.key_id}")
        try:
            cek = aes_key_unwrap(opener.secret, ri["encrypted_key"].native)
        except InvalidUnwrap:
            raise UnwrapError(f"the content key does not unwrap under KEK {opener.key_id}: "
                              "wrong KEK or corrupted blob") from None
    else:
        cek = _recover_ktri(ri, alg, opener)
    if len(cek) != _CEK_LEN:
        raise _refuse("the content-encryption key is not 256 bits")
    return cek


def _recover_ktri(ri: core.Sequence, alg: core.Sequence, opener: Opener) -> bytes:
    if ri["version"].native != "v0" or ri["rid"].name != "issuer_and_serial_number":
        raise _refuse("KeyTransRecipientInfo must be version 0 by issuer and serial number")
    if not isinstance(opener, PrivateKeyHolder):
        raise UnwrapError(f"the blob is for a certificate holder; KEK {opener.key_id} "
                          "cannot open it")
    issuer, serial = _issuer_serial(opener.certificate)
    rid = ri["rid"].chosen
    if rid["issuer"].dump() != issuer.dump() or rid["serial_number"].native != serial:
        raise UnwrapError(f"the blob is for another certificate, not {opener.key_id}")
    params = alg["parameters"].native if alg["algorithm"].native == "rsaes_oaep" else None
    if params is None or params["hash_algorithm"]["algorithm"] != "sha256" or \
            params["mask_gen_algorithm"]["parameters"]["algorithm"] != "sha256" or \
            params["p_source_algorithm"]["parameters"] != b"":
        raise _refuse("key transport must be RSA-OAEP with SHA-256 and MGF1-SHA-256")
    try:
        return opener.private_key.decrypt(ri["encrypted_key"].native, _OAEP)
    except ValueError:
        raise UnwrapError(f"the content key does not decrypt with the private key of "
                          f"{opener.key_id}: wrong key or corrupted blob") from None


def _content(eci: core.Sequence) -> tuple[str, Any, bytes]:
    if eci["content_type"].native != "data":
        raise _refuse("the encrypted content must be id-data")
    ct = eci["encrypted_content"].native
    if not ct:
        raise _refuse("no encrypted content")
    alg = eci["content_encryption_algorithm"]
    return alg["algorithm"].native, alg["parameters"], ct


def _open_cbc(body: core.Sequence, cek: bytes, kind: str, key_id: str) -> bytes:
    version = "v2" if kind == "kekri" else "v0"
    if body["version"].native != version or body["unprotected_attrs"].native is not None:
        raise _refuse(f"EnvelopedData must be {version} without attributes")
    name, params, ct = _content(body["encrypted_content_info"])
    iv = params.native if name == "aes256_cbc" else None
    if not isinstance(iv, bytes) or len(iv) != 16 or len(ct) % 16:
        raise _refuse("content must be AES-256-CBC with a 16-byte IV")
    dec = Cipher(algorithms.AES(cek), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(dec.update(ct) + dec.finalize()) + unpadder.finalize()
    except ValueError:
        raise UnwrapError(f"the content does not decrypt under the key from {key_id}: "
                          "corrupted blob") from None


def _open_gcm(body: core.Sequence, cek: bytes, key_id: str) -> bytes:
    if body["version"].native != "v0" or body["auth_attrs"].native is not None or \
            body["unauth_attrs"].native is not None:
        raise _refuse("AuthEnvelopedData must be v0 without attributes")
    name, params, ct = _content(body["auth_encrypted_content_info"])
    if name != "aes256_gcm":
        raise _refuse("content must be AES-256-GCM")
    try:
        gcm = algos.CcmParams.load(params.dump(), strict=True)
        nonce, icvlen = gcm["aes_nonce"].native, gcm["aes_icvlen"].native
    except (ValueError, TypeError):
        raise _refuse("malformed GCM parameters") from None
    mac = body["mac"].native
    if len(nonce) != 12 or icvlen != 16 or len(mac) != 16:
        raise _refuse("GCM needs a 12-byte nonce and a 16-byte tag")
    try:
        return AESGCM(cek).decrypt(nonce, ct + mac, None)
    except InvalidTag:
        raise UnwrapError(f"authentication failed opening the blob with {key_id}: "
                          "corrupted or forged content") from None
