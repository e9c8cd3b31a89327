"""Signed responses: KmsClient verifies every response and refuses unsigned, tampered,
foreign-key or replayed ones (a man in the middle on the HTTP connection)."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from kms_ws.client import KmsClient, KmsFault, UntrustedResponse
from kms_ws.client.addressing import AddressingPlugin
from kms_ws.client.signing import SignaturePlugin
from kms_ws.domain.errors import MessageSecurityError
from kms_ws.security import wssecurity
from kms_ws.security.certificates import (
    SERVER_CERT_FILE,
    SERVER_KEY_FILE,
    create_server_key,
    self_signed,
)
from kms_ws.security.wssecurity import THUMBPRINT_SHA1, SigningKey
from kms_ws.wsman.addressing import must_understand
from kms_ws.xmlns import DS, KMS, SOAP, WSMAN, WSSE

from ..support import wsman
from ..support.envelopes import envelope, get_key
from ..support.server import ADMIN, ServerProcess, running_server
from ..support.signing import new_key, register_signer, signed, utcnow
from ..support.tamper import Rewrite, TamperingRelay
from ..support.validating import ValidatingPlugin, post

CT = {"Content-Type": "application/soap+xml;charset=UTF-8"}


@contextmanager
def _client(server: ServerProcess, rewrite: Rewrite
            ) -> Iterator[tuple[KmsClient, TamperingRelay]]:
    """A client whose connection runs through a man in the middle (`relay.active`: it
    rewrites the answers, after the server signed them)."""
    with (TamperingRelay(server.url, rewrite) as relay,
          KmsClient(relay.url, *ADMIN, server_cert=str(server.data_dir / SERVER_CERT_FILE),
                    ) as c):
        yield c, relay


def test_pinned_certificate_verifies_responses(server: ServerProcess) -> None:
    v = ValidatingPlugin()
    with KmsClient(server.url, *ADMIN, server_cert=str(server.data_dir / SERVER_CERT_FILE),
                   plugins=[v]) as c:
        key = c.create_key(friendly_name="pinned")
        assert c.get_key(key.key_id).value == key.value
    assert v.received == 2


def test_tampered_key_value_is_refused(server: ServerProcess) -> None:
    def flip(data: bytes) -> bytes:
        start = data.index(b"<kms:Data>") + len(b"<kms:Data>")
        c = data[start:start + 1]
        return data[:start] + (b"A" if c != b"A" else b"B") + data[start + 1:]
    with _client(server, flip) as (c, relay):
        key = c.create_key(friendly_name="tamper")
        relay.active = True
        with pytest.raises(UntrustedResponse) as exc:
            c.get_key(key.key_id)
    assert "does not verify" in exc.value.reason


def test_unsigned_response_is_refused(server: ServerProcess) -> None:
    def strip(data: bytes) -> bytes:
        start = data.index(b"<wsse:Security")
        end = data.index(b"</wsse:Security>") + len(b"</wsse:Security>")
        return data[:start] + data[end:]
    with _client(server, strip) as (c, relay):
        relay.active = True
        with pytest.raises(UntrustedResponse) as exc:
            c.get_random_bytes(16)
    assert "not signed" in exc.value.reason


def test_response_to_another_request_is_refused(server: ServerProcess) -> None:
    """A genuine signed response, replayed to answer a later request."""
    captured: list[bytes] = []

    def replay(data: bytes) -> bytes:
        if not captured:
            captured.append(data)
            return data
        return captured[0]
    with _client(server, replay) as (c, relay):
        relay.active = True
        c.get_random_bytes(16)
        with pytest.raises(UntrustedResponse) as exc:
            c.get_random_bytes(16)
    assert "does not answer this request" in exc.value.reason


def test_response_signed_by_another_key_is_refused(server: ServerProcess, tmp_path) -> None:  # type: ignore[no-untyped-def]
    other = tmp_path / "other.pem"
    other.write_bytes(self_signed(new_key(), "impostor").public_bytes(Encoding.PEM))
    with (
        KmsClient(server.url, *ADMIN, server_cert=str(other)) as c,
        pytest.raises(UntrustedResponse) as exc,
    ):
        c.get_random_bytes(16)
    assert exc.value.error_code == "E_INVALID_CREDENTIALS"


def test_faults_are_signed_and_verified(server: ServerProcess) -> None:
    """A fault from the server is verified too; a tampered fault is not believed."""
    with KmsClient(server.url, *ADMIN, server_cert=str(server.data_dir / SERVER_CERT_FILE)) as c:
        with pytest.raises(KmsFault) as exc:
            c.get_key("00000000-0000-4000-8000-000000000000")
        assert exc.value.subcode == "kms:NotFound"

    def reword(data: bytes) -> bytes:
        return data.replace(b"E_KEY_NOT_FOUND", b"E_INTERNAL")
    with _client(server, reword) as (c, relay):
        relay.active = True
        with pytest.raises(UntrustedResponse):
            c.get_key("00000000-0000-4000-8000-000000000000")


def test_signing_certificate_is_published(server: ServerProcess) -> None:
    r = requests.get(server.url + "?signing-cert", timeout=10)
    assert r.status_code == 200
    assert r.content == (server.data_dir / SERVER_CERT_FILE).read_bytes()


# ---- the header blocks of a response are signed too ----------------------------------

def test_a_forged_update_token_is_refused(server: ServerProcess) -> None:
    """A man in the middle raising the final UpdateVersioningTokens of a GetUpdateList
    would make the client skip every change up to the forged token."""
    def raise_token(data: bytes) -> bytes:
        return re.sub(rb'(<kms:UpdateVersioningTokens[^>]*><kms:Token Type="AllKeys">)\d+',
                      rb"\g<1>999999", data)
    with _client(server, raise_token) as (c, relay):
        c.create_key(friendly_name="listed")
        tokens = _run_to_end(c.get_update_list())
        assert 0 < tokens["AllKeys"] < 999999
        relay.active = True
        with pytest.raises(UntrustedResponse) as exc:
            _run_to_end(c.get_update_list())
    assert "does not verify" in exc.value.reason


@pytest.mark.parametrize("block", [
    f'<wsman:TotalItemsCountEstimate xmlns:wsman="{WSMAN}">1</wsman:TotalItemsCountEstimate>',
    f'<kms:UpdateVersioningTokens xmlns:kms="{KMS}"><kms:Token Type="AllKeys">999999'
    "</kms:Token></kms:UpdateVersioningTokens>",
    "<wsa:RelatesTo>uuid:00000000-0000-4000-8000-000000000000</wsa:RelatesTo>",
], ids=["TotalItemsCountEstimate", "UpdateVersioningTokens", "RelatesTo"])
def test_an_unsigned_header_added_to_a_response_is_refused(server: ServerProcess,
                                                           block: str) -> None:
    def add(data: bytes) -> bytes:
        return data.replace(b"<wsse:Security", block.encode() + b"<wsse:Security", 1)
    with _client(server, add) as (c, relay):
        relay.active = True
        with pytest.raises(UntrustedResponse) as exc:
            _run_to_end(c.get_update_list())
    assert "does not cover the header" in exc.value.reason \
        or "is given more than once" in exc.value.reason


def test_a_response_answers_the_action_it_was_asked(server: ServerProcess) -> None:
    """The signed wsa:Action is the answer to the request's action (or a fault's)."""
    addressing = AddressingPlugin(server.url)
    plugin = SignaturePlugin(addressing, None, True)
    plugin.server_cert = x509.load_pem_x509_certificate(
        (server.data_dir / SERVER_CERT_FILE).read_bytes())
    for asked, accepted in (("GetKey", False), ("GetRandomBytes", True)):
        addressing.last_message_id = f"uuid:{uuid.uuid4()}"
        addressing.last_action = f"{KMS}/{asked}"
        r = requests.post(server.url, auth=ADMIN, timeout=10, headers=CT, data=envelope(
            "<kms:GetRandomBytes><kms:NumberOfBytes>4</kms:NumberOfBytes>"
            "</kms:GetRandomBytes>", op="GetRandomBytes",
            message_id=addressing.last_message_id))
        if accepted:
            plugin.ingress(etree.fromstring(r.content), {}, None)
        else:
            with pytest.raises(MessageSecurityError, match=f"is not {KMS}/GetKeyResponse"):
                plugin.ingress(etree.fromstring(r.content), {}, None)


# ---- 13.1: a client without WS-Security can ignore the signature ----------------------

def _must_understand(data: bytes) -> list[str]:
    env = etree.fromstring(data)
    header = env.find("{http://www.w3.org/2003/05/soap-envelope}Header")
    return [str(h.tag) for h in (header if header is not None else [])
            if isinstance(h.tag, str) and must_understand(h)]


def test_no_response_header_asks_to_be_understood(server: ServerProcess,
                                                  client_factory) -> None:  # type: ignore[no-untyped-def]
    """JAX-WS and gSOAP refuse a response carrying a mustUnderstand header they do not
    process: results, faults (a MustUnderstand one too) and WS-Management responses with
    extra header blocks carry none, signed as they are."""
    unknown = ('<x:Must xmlns:x="urn:x" xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
               's:mustUnderstand="true">1</x:Must>')
    messages = [
        envelope("<kms:GetRandomBytes><kms:NumberOfBytes>4</kms:NumberOfBytes>"
                 "</kms:GetRandomBytes>", op="GetRandomBytes"),
        envelope(get_key("00000000-0000-4000-8000-000000000000"), op="GetKey"),
        envelope(get_key("00000000-0000-4000-8000-000000000000"), op="GetKey",
                 headers=unknown),
        wsman.enumerate_(wsman.optimized(extra=wsman.update_filter()), style="shell",
                         extra="<wsman:RequestTotalItemsCountEstimate/>"),
    ]
    seen = set()
    _, *alone = client_factory(realms=(f"realm://alone/{uuid.uuid4().hex[:8]}",))
    for msg in messages:  # (the enumeration is one page: the client sees no key)
        r, env = post(server.url, msg, auth=tuple(alone), validate_request=False)
        assert env is not None and env.find(f".//{{{DS}}}Signature") is not None
        assert _must_understand(r.content) == [], r.content
        seen |= {h.tag for h in env.find("{http://www.w3.org/2003/05/soap-envelope}Header")}
    assert {f"{{{KMS}}}UpdateVersioningTokens", f"{{{WSMAN}}}TotalItemsCountEstimate",
            "{http://www.w3.org/2003/05/soap-envelope}NotUnderstood"} <= seen


# ---- 12.12: a fault the server signed without reading the request --------------------

def test_an_oversize_request_reports_the_encoding_limit(server: ServerProcess) -> None:
    with KmsClient(server.url, *ADMIN,
                   server_cert=str(server.data_dir / SERVER_CERT_FILE)) as c:
        with pytest.raises(KmsFault) as exc:
            c.push_audit_messages([{"event": "Note", "message": "A" * 4000}] * 200)
        assert not isinstance(exc.value, UntrustedResponse)
        assert (exc.value.subcode, exc.value.error_code) == ("wsman:EncodingLimit",
                                                             "E_ENCODING_LIMIT")
        assert c.get_random_bytes(8)  # and the client goes on


def test_an_unbound_fault_is_believed_once_and_never_as_a_result(server: ServerProcess) -> None:
    """A signed fault that relates to no request is taken only as a fault made after the
    request left, once; a signed result relating to no request is never taken."""
    big = [{"event": "Note", "message": "A" * 4000}] * 200
    captured: list[bytes] = []

    def keep_first(data: bytes) -> bytes:
        if not captured:
            captured.append(data)
        return captured[0]
    with _client(server, keep_first) as (c, relay):
        relay.active = True
        with pytest.raises(KmsFault) as exc:
            c.push_audit_messages(big)
        assert exc.value.subcode == "wsman:EncodingLimit"
        with pytest.raises(UntrustedResponse) as replayed:  # the same fault again
            c.push_audit_messages(big)
        assert "received before" in replayed.value.reason
    # a signed result to a request that carried no MessageID has no RelatesTo either
    r = requests.post(server.url, auth=ADMIN, timeout=10, headers=CT,
                      data=envelope("<kms:GetRandomBytes><kms:NumberOfBytes>4"
                                    "</kms:NumberOfBytes></kms:GetRandomBytes>",
                                    op="GetRandomBytes", addressing=False))
    assert r.status_code == 200 and b"RelatesTo" not in r.content
    with _client(server, lambda data: r.content) as (c, relay):
        relay.active = True
        with pytest.raises(UntrustedResponse) as unbound:
            c.get_random_bytes(4)
    assert "does not answer this request" in unbound.value.reason


def _run_to_end(gen):  # type: ignore[no-untyped-def]
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


# ---- the server's certificate is named by its thumbprint, and pinned ------------------

def _resign(key: SigningKey) -> Rewrite:
    """A man in the middle who strips the server's signature and signs the response
    afresh (Body, Timestamp, every header block) with `key`."""
    def rewrite(data: bytes) -> bytes:
        env = etree.fromstring(data)
        header = env.find(f"{{{SOAP}}}Header")
        header.remove(header.find(f"{{{WSSE}}}Security"))
        wssecurity.sign(env, key, now=utcnow(), ttl_seconds=300, must_understand=False)
        return etree.tostring(env)
    return rewrite


def _impostor(**options: bool) -> SigningKey:
    key = new_key()
    return SigningKey(key, self_signed(key, "kms-ws response signing"), **options)


def test_a_response_names_the_pinned_certificate_by_its_thumbprint(server: ServerProcess
                                                                  ) -> None:
    """The certificate does not travel with each response: KeyInfo holds its WSS 1.1
    ThumbprintSHA1 KeyIdentifier, and the client verifies with the certificate it pinned."""
    pem = (server.data_dir / SERVER_CERT_FILE).read_bytes()
    cert_der = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    r, env = post(server.url, envelope(get_key(str(uuid.uuid4())), op="GetKey"), auth=ADMIN)
    assert b"BinarySecurityToken" not in r.content
    ki = env.find(f".//{{{DS}}}KeyInfo/{{{WSSE}}}SecurityTokenReference/"
                  f"{{{WSSE}}}KeyIdentifier")
    assert ki.get("ValueType") == THUMBPRINT_SHA1
    assert base64.b64decode(ki.text) == hashlib.sha1(cert_der).digest()
    for fast in (True, False):
        with KmsClient(server.url, *ADMIN, server_cert=pem, fast_path=fast) as c:
            key = c.create_key(friendly_name="by-thumbprint")
            assert c.get_key(key.key_id).value == key.value


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "zeep"])
@pytest.mark.parametrize("token", [False, True], ids=["by-thumbprint", "token-sent"])
def test_a_response_signed_with_another_certificate_is_refused(server: ServerProcess,
                                                               fast: bool, token: bool
                                                               ) -> None:
    """A man in the middle re-signs a GetKey response (its own key value) with his own
    certificate, named by its thumbprint or sent as a token: the client, which pinned
    the server's certificate on first use, refuses it as a certificate change, saying
    which certificate signed it."""
    impostor = _impostor(by_thumbprint=not token)
    impostor_print = hashlib.sha1(impostor.cert.public_bytes(Encoding.DER)).hexdigest()
    resign = _resign(impostor)

    def forge(data: bytes) -> bytes:
        return resign(re.sub(rb"<kms:Data>[^<]*</kms:Data>",
                             b"<kms:Data>" + base64.b64encode(bytes(32)) + b"</kms:Data>",
                             data))
    with (TamperingRelay(server.url, forge) as relay,
          KmsClient(relay.url, *ADMIN, fast_path=fast) as c):  # trust on first use
        key = c.create_key(friendly_name="resigned")
        relay.active = True
        with pytest.raises(UntrustedResponse) as exc:
            c.get_key(key.key_id)
        assert relay.rewritten == 1
    assert exc.value.error_code == "E_INVALID_CREDENTIALS"
    assert f"thumbprint {impostor_print}, not the pinned server certificate" \
        in exc.value.reason
    assert "certificate changed" in exc.value.reason


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "zeep"])
def test_a_response_naming_the_pinned_thumbprint_but_signed_by_another_key_is_refused(
        server: ServerProcess, fast: bool) -> None:
    """The thumbprint only names the certificate: a response that names the pinned one
    but is signed with another key does not verify."""
    pem = (server.data_dir / SERVER_CERT_FILE).read_bytes()
    server_print = base64.b64encode(hashlib.sha1(
        x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)).digest())
    resign = _resign(_impostor(by_thumbprint=True))

    def forge(data: bytes) -> bytes:
        return re.sub(rb"(<wsse:KeyIdentifier [^>]*>)[^<]*", rb"\g<1>" + server_print,
                      resign(data))
    with (TamperingRelay(server.url, forge) as relay,
          KmsClient(relay.url, *ADMIN, server_cert=pem, fast_path=fast) as c):
        relay.active = True
        with pytest.raises(UntrustedResponse) as exc:
            c.get_random_bytes(16)
        assert relay.rewritten == 1
    assert "does not verify" in exc.value.reason


def test_a_changed_server_certificate_is_detected(tmp_path: Path) -> None:
    """The server's signing key is replaced (a restore, or an intruder on the server):
    clients that pinned the old certificate, by trust on first use or by server_cert,
    refuse every response, on both paths, until they are given the new one."""
    with running_server(tmp_path / "data") as srv:
        old = (srv.data_dir / SERVER_CERT_FILE).read_bytes()
        clients = [KmsClient(srv.url, *ADMIN, fast_path=True),
                   KmsClient(srv.url, *ADMIN, fast_path=False),
                   KmsClient(srv.url, *ADMIN, server_cert=old)]
        try:
            key = clients[0].create_key(friendly_name="before-change")
            for c in clients:
                assert c.get_key(key.key_id).value == key.value
            assert srv.stop() == 0
            for name in (SERVER_KEY_FILE, SERVER_CERT_FILE):
                (srv.data_dir / name).unlink()
            create_server_key(srv.data_dir)
            new = (srv.data_dir / SERVER_CERT_FILE).read_bytes()
            assert new != old
            srv.start()
            for c in clients:
                with pytest.raises(UntrustedResponse) as exc:
                    c.get_key(key.key_id)
                assert "not the pinned server certificate" in exc.value.reason
            with KmsClient(srv.url, *ADMIN, server_cert=new) as c:
                assert c.get_key(key.key_id).value == key.value
        finally:
            for c in clients:
                c.close()


def test_a_request_naming_its_certificate_by_thumbprint_is_refused(
        server: ServerProcess, admin: KmsClient) -> None:
    """A request's signer is looked up by the certificate it sends or by its endpoint
    name; a thumbprint names nothing the server looks up: refused, nothing done."""
    signer = register_signer(admin)
    key = SigningKey(signer.key.key, signer.key.cert, by_thumbprint=True)
    r, env = post(server.url, signed(get_key(str(uuid.uuid4())), "GetKey", key))
    assert env.findtext(f".//{{{KMS}}}ErrorCode") == "E_INVALID_CREDENTIALS"
    assert "not by a thumbprint" in env.findtext(f".//{{{SOAP}}}Reason/{{{SOAP}}}Text")
