"""Interop with Debian's xmlsec1, both directions: it verifies the server's signed
responses, and requests it signs (WS-Security template) are accepted."""

from __future__ import annotations

import base64
import shlex
import shutil
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from kms_ws.client import KmsClient
from kms_ws.security.certificates import SERVER_CERT_FILE
from kms_ws.security.wssecurity import BASE64, X509V3
from kms_ws.xmlns import DS, EXC_C14N, KMS, SOAP, SOAP11, WSA, WSSE, WSU, action

from ..support import db, wsman
from ..support.envelopes import create_key, envelope, envelope11, get_key
from ..support.server import ADMIN, ServerProcess
from ..support.signing import (
    ID_ATTRS,
    SOAP_BODY_ID,
    id_attrs,
    register_signer,
    utcnow,
    xmlsec1,
)
from ..support.validating import post, post11

# Debian's xmlsec1 is the independent implementation here (tests/support/prerequisites.py)
pytestmark = pytest.mark.needs("xmlsec1")


K = f"{{{KMS}}}"
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
    # Body, Timestamp, wsa:To, Action, MessageID, RelatesTo
    assert "SignedInfo References (ok/all): 6/6" in ok.stderr + ok.stdout
    # and xmlsec1 notices tampering (the check above is a real check)
    tampered = r.content.replace(b"<kms:RandomBytes>", b"<kms:RandomBytes>AAAA")
    assert tampered != r.content
    (tmp_path / "bad.xml").write_bytes(tampered)
    bad = xmlsec1("--verify", *ID_ATTRS, "--pubkey-cert-pem", cert, "bad.xml", cwd=tmp_path)
    assert bad.returncode != 0


def test_xmlsec1_verifies_soap11_responses_and_faults(server: ServerProcess,
                                                     tmp_path: Path) -> None:
    """A SOAP 1.1 response carries the same signature, over its own (SOAP 1.1) Body."""
    cert = str(server.data_dir / SERVER_CERT_FILE)
    ids = id_attrs(f"{SOAP11}:Body", f"{WSU}:Timestamp",
                   *[f"{WSA}:{n}" for n in ("To", "Action", "MessageID", "RelatesTo")])
    for name, op, body, status in [
            ("resp", "GetRandomBytes", "<kms:GetRandomBytes><kms:NumberOfBytes>8"
             "</kms:NumberOfBytes></kms:GetRandomBytes>", 200),
            ("fault", "GetKey", get_key(str(uuid.uuid4())), 500)]:
        r, env = post11(server.url, envelope11(body, op=op), action=action(op), auth=ADMIN)
        assert r.status_code == status and env.find(f".//{{{WSA}}}RelatesTo") is not None
        (tmp_path / f"{name}.xml").write_bytes(r.content)
        ok = xmlsec1("--verify", *ids, "--pubkey-cert-pem", cert, f"{name}.xml", cwd=tmp_path)
        assert ok.returncode == 0, ok.stderr
        # Body, Timestamp, wsa:To, Action, MessageID, RelatesTo
        assert "SignedInfo References (ok/all): 6/6" in ok.stderr + ok.stdout
        tampered = r.content.replace(b"</s:Body>", b'<x:Extra xmlns:x="urn:x"/></s:Body>')
        assert tampered != r.content
        (tmp_path / "bad.xml").write_bytes(tampered)
        assert xmlsec1("--verify", *ids, "--pubkey-cert-pem", cert, "bad.xml",
                       cwd=tmp_path).returncode != 0


def _template(body: str, op: str, key_info: str, security_extra: str = "",
              algorithm: str = "ecdsa-sha256") -> bytes:
    now = utcnow()
    created = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    expires = (now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    refs = "".join(
        f'<ds:Reference URI="#{uri}"><ds:Transforms><ds:Transform Algorithm="{EXC_C14N}"/>'
        f'</ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
        f"<ds:DigestValue/></ds:Reference>" for uri in ("Body-1", "TS-1", *SIGNED_HEADERS))
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
            f'xmlns:wsu="{WSU}"><s:Header>'
            f'<wsa:To wsu:Id="To-1">http://127.0.0.1/wsman</wsa:To>'
            f'<wsa:Action wsu:Id="Action-1">{action(op)}</wsa:Action>'
            f'<wsa:MessageID wsu:Id="MessageID-1">{mid}</wsa:MessageID>'
            f'{security}</s:Header><s:Body wsu:Id="Body-1">{body}</s:Body></s:Envelope>'
            ).encode()


# The header blocks the template's signature covers (the server acts on each).
SIGNED_HEADERS = ("To-1", "Action-1", "MessageID-1")


def _sign_with_xmlsec1(template: bytes, key_pem: bytes, tmp_path: Path) -> bytes:
    (tmp_path / "tmpl.xml").write_bytes(template)
    (tmp_path / "key.pem").write_bytes(key_pem)
    res = xmlsec1("--sign", "--privkey-pem", "key.pem",
                  *id_attrs(SOAP_BODY_ID, f"{WSU}:Timestamp",
                            *[f"{WSA}:{n}" for n in ("To", "Action", "MessageID")]),
                  "--output", "signed.xml", "tmpl.xml", cwd=tmp_path)
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
    assert r.status_code == 400


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
    assert r.status_code == 400 and b"InclusiveNamespaces" in r.content
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


def test_a_request_xmlsec1_signs_over_body_and_timestamp_only_is_refused(
        server: ServerProcess, admin: KmsClient, tmp_path: Path) -> None:
    """The old profile (Body and Timestamp): its wsa:Action, To and MessageID could be
    anything a relay likes, so the server refuses it, and records the signer's request."""
    signer = register_signer(admin)
    template = _template(create_key("headers-unsigned"), "CreateKey",
                         f"<ds:KeyName>{signer.name}</ds:KeyName>")
    for uri in SIGNED_HEADERS:  # drop the header references from the template
        start = template.index(f'<ds:Reference URI="#{uri}">'.encode())
        template = template[:start] + template[template.index(b"</ds:Reference>", start)
                                               + len(b"</ds:Reference>"):]
    msg = _sign_with_xmlsec1(template, signer.key_pem, tmp_path)
    assert msg.count(b"<ds:Reference ") == 2
    before = db.snapshot(server.data_dir)
    r, env = post(server.url, msg)
    assert env.findtext(f".//{{{SOAP}}}Subcode/{{{SOAP}}}Value") == "wsse:FailedCheck"
    assert "does not cover the header wsa:To" in env.findtext(f".//{{{SOAP}}}Text")
    assert db.snapshot(server.data_dir) == before
    # (its operation is not named: the wsa:Action that would name it is not signed)
    assert db.rows(server.data_dir, "SELECT operation, event FROM audit WHERE actor_id = ?",
                   (signer.endpoint_id,)) == [("-", "E_SIGNATURE_INVALID")]


def _readme_command() -> list[str]:
    """The xmlsec1 command of docs/wire.md's Interop paragraph, as a shell would split it."""
    readme = (Path(__file__).resolve().parents[2] / "docs" / "wire.md").read_text()
    block = readme[readme.index("**Interop.**"):]
    block = block[block.index("```sh\n") + 6:]
    return shlex.split(block[:block.index("```")].replace("\\\n", " "))


def test_the_documented_command_verifies_responses_as_written(server: ServerProcess,
                                                          client_factory,  # type: ignore[no-untyped-def]
                                                          tmp_path: Path) -> None:
    """Run as written (kms-data/server-signing.pem, response.xml in the working
    directory) on a result and on a final enumeration page carrying the extra header
    blocks the server adds; every reference is checked."""
    command = _readme_command()
    assert command[:2] == ["xmlsec1", "--verify"] and command[-1] == "response.xml"
    (tmp_path / "kms-data").mkdir()
    shutil.copy(server.data_dir / SERVER_CERT_FILE, tmp_path / "kms-data" / SERVER_CERT_FILE)
    assert "kms-data/" + SERVER_CERT_FILE in command
    messages = {
        6: envelope("<kms:GetRandomBytes><kms:NumberOfBytes>8</kms:NumberOfBytes>"
                    "</kms:GetRandomBytes>", op="GetRandomBytes"),
        8: wsman.enumerate_(wsman.optimized(extra=wsman.update_filter()), style="shell",
                            extra="<wsman:RequestTotalItemsCountEstimate/>"),
    }
    _, *alone = client_factory(realms=(f"realm://alone/{uuid.uuid4().hex[:8]}",))
    for references, msg in messages.items():  # (one page: the client sees no key)
        r, env = post(server.url, msg, auth=tuple(alone), validate_request=False)
        assert r.status_code == 200
        (tmp_path / "response.xml").write_bytes(r.content)
        ok = xmlsec1(*command[1:], cwd=tmp_path)
        assert ok.returncode == 0, ok.stderr
        assert f"SignedInfo References (ok/all): {references}/{references}" \
            in ok.stderr + ok.stdout
        (tmp_path / "response.xml").write_bytes(r.content.replace(
            b"</wsa:MessageID>", b"0</wsa:MessageID>", 1))  # a signed header changed
        assert xmlsec1(*command[1:], cwd=tmp_path).returncode != 0
