"""Interop with Debian's xmlsec1, both directions: it verifies the server's signed
responses, and requests it signs (WS-Security template) are accepted."""

from __future__ import annotations

import base64
import shutil
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from kms_ws.client import KmsClient
from kms_ws.security.certificates import SERVER_CERT_FILE
from kms_ws.security.wssecurity import BASE64, X509V3
from kms_ws.xmlns import DS, EXC_C14N, KMS, SOAP, WSA, WSSE, WSU, action

from ..support import db
from ..support.envelopes import create_key, envelope
from ..support.server import ADMIN, ServerProcess
from ..support.signing import (
    ID_ATTRS,
    SOAP_BODY_ID,
    id_attrs,
    register_signer,
    utcnow,
    xmlsec1,
)
from ..support.validating import post

pytestmark = pytest.mark.skipif(shutil.which("xmlsec1") is None,
                                reason="xmlsec1 is installed by .ci/run (Debian package)")
K = "{%s}" % KMS
MORE = "http://www.w3.org/2001/04/xmldsig-more#"


def test_xmlsec1_verifies_server_responses(server: ServerProcess, tmp_path: Path) -> None:
    msg = envelope("<kms:GetRandomBytes><kms:NumberOfBytes>8</kms:NumberOfBytes>"
                   "</kms:GetRandomBytes>", op="GetRandomBytes")
    r, env = post(server.url, msg, auth=ADMIN)
    assert r.status_code == 200 and env.find(f".//{{{WSA}}}RelatesTo") is not None
    (tmp_path / "resp.xml").write_bytes(r.content)
    cert = str(server.data_dir / SERVER_CERT_FILE)
    ok = xmlsec1("--verify", *ID_ATTRS, "--pubkey-cert-pem", cert, "resp.xml", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "SignedInfo References (ok/all): 3/3" in ok.stderr + ok.stdout
    # and xmlsec1 notices tampering (the check above is a real check)
    tampered = r.content.replace(b"<kms:RandomBytes>", b"<kms:RandomBytes>AAAA")
    assert tampered != r.content
    (tmp_path / "bad.xml").write_bytes(tampered)
    bad = xmlsec1("--verify", *ID_ATTRS, "--pubkey-cert-pem", cert, "bad.xml", cwd=tmp_path)
    assert bad.returncode != 0


def _template(body: str, op: str, key_info: str, security_extra: str = "",
              algorithm: str = "ecdsa-sha256") -> bytes:
    now = utcnow()
    created = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    expires = (now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    refs = "".join(
        f'<ds:Reference URI="#{uri}"><ds:Transforms><ds:Transform Algorithm="{EXC_C14N}"/>'
        f'</ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
        f"<ds:DigestValue/></ds:Reference>" for uri in ("Body-1", "TS-1"))
    security = (
        f'<wsse:Security xmlns:wsse="{WSSE}" s:mustUnderstand="true">{security_extra}'
        f'<wsu:Timestamp wsu:Id="TS-1"><wsu:Created>{created}</wsu:Created>'
        f"<wsu:Expires>{expires}</wsu:Expires></wsu:Timestamp>"
        f'<ds:Signature xmlns:ds="{DS}"><ds:SignedInfo>'
        f'<ds:CanonicalizationMethod Algorithm="{EXC_C14N}"/>'
        f'<ds:SignatureMethod Algorithm="{MORE}{algorithm}"/>{refs}</ds:SignedInfo>'
        f"<ds:SignatureValue/><ds:KeyInfo>{key_info}</ds:KeyInfo></ds:Signature>"
        f"</wsse:Security>")
    mid = f"uuid:{uuid.uuid4()}"
    return (f'<s:Envelope xmlns:s="{SOAP}" xmlns:wsa="{WSA}" xmlns:kms="{KMS}" '
            f'xmlns:wsu="{WSU}"><s:Header><wsa:To>http://127.0.0.1/wsman</wsa:To>'
            f"<wsa:Action>{action(op)}</wsa:Action><wsa:MessageID>{mid}</wsa:MessageID>"
            f'{security}</s:Header><s:Body wsu:Id="Body-1">{body}</s:Body></s:Envelope>'
            ).encode()


def _sign_with_xmlsec1(template: bytes, key_pem: bytes, tmp_path: Path) -> bytes:
    (tmp_path / "tmpl.xml").write_bytes(template)
    (tmp_path / "key.pem").write_bytes(key_pem)
    res = xmlsec1("--sign", "--privkey-pem", "key.pem",
                  *id_attrs(SOAP_BODY_ID, f"{WSU}:Timestamp"), "--output", "signed.xml",
                  "tmpl.xml", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    return (tmp_path / "signed.xml").read_bytes()


@pytest.mark.parametrize("kind,algorithm", [("ec", "ecdsa-sha256"), ("rsa", "rsa-sha256")])
def test_request_signed_by_xmlsec1_with_key_name(server: ServerProcess, admin: KmsClient,
                                                 tmp_path: Path, kind: str,
                                                 algorithm: str) -> None:
    signer = register_signer(admin, kind)
    msg = _sign_with_xmlsec1(_template(create_key("xmlsec1-made"), "CreateKey",
                                       f"<ds:KeyName>{signer.name}</ds:KeyName>",
                                       algorithm=algorithm), signer.key_pem, tmp_path)
    before = db.count(server.data_dir, "keys")
    r, env = post(server.url, msg)
    assert r.status_code == 200, r.text
    assert db.count(server.data_dir, "keys") == before + 1
    r, env = post(server.url, msg)  # the same xmlsec1-signed message again: a replay
    assert r.status_code == 409


def test_request_signed_by_xmlsec1_with_binary_security_token(
        server: ServerProcess, admin: KmsClient, tmp_path: Path) -> None:
    signer = register_signer(admin)
    cert_der = signer.key.cert.public_bytes(Encoding.DER)
    token = (f'<wsse:BinarySecurityToken wsu:Id="X509-1" ValueType="{X509V3}" '
             f'EncodingType="{BASE64}">{base64.b64encode(cert_der).decode()}'
             f"</wsse:BinarySecurityToken>")
    ref = (f'<wsse:SecurityTokenReference><wsse:Reference URI="#X509-1" ValueType="{X509V3}"/>'
           f"</wsse:SecurityTokenReference>")
    msg = _sign_with_xmlsec1(_template(create_key("xmlsec1-bst"), "CreateKey", ref, token),
                             signer.key_pem, tmp_path)
    r, env = post(server.url, msg)
    assert r.status_code == 200, r.text
    assert env.findtext(f".//{K}FriendlyName") == "xmlsec1-bst"


def test_xmlsec1_verifies_signed_faults(server: ServerProcess, tmp_path: Path) -> None:
    """A fault's Subcode is a QName in text: its prefix declaration is signed through
    InclusiveNamespaces, and xmlsec1 agrees with the digest."""
    msg = envelope("<kms:GetKey><kms:KeyId>00000000-0000-4000-8000-000000000000</kms:KeyId>"
                   "</kms:GetKey>", op="GetKey")
    r, env = post(server.url, msg, auth=ADMIN)
    assert r.status_code == 404 and b"InclusiveNamespaces" in r.content
    (tmp_path / "fault.xml").write_bytes(r.content)
    cert = str(server.data_dir / SERVER_CERT_FILE)
    ok = xmlsec1("--verify", *ID_ATTRS, "--pubkey-cert-pem", cert, "fault.xml", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    # Rebinding the subcode's prefix to another namespace breaks the signature.
    rebound = r.content.replace(b'xmlns:kms="urn:kms-ws:p1619.3:1"><s:Value>',
                                b'xmlns:kms="urn:attacker"><s:Value>', 1)
    assert rebound != r.content
    (tmp_path / "rebound.xml").write_bytes(rebound)
    bad = xmlsec1("--verify", *ID_ATTRS, "--pubkey-cert-pem", cert, "rebound.xml",
                  cwd=tmp_path)
    assert bad.returncode != 0
