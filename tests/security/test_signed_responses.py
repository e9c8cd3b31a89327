"""Signed responses: KmsClient verifies every response and refuses unsigned, tampered,
foreign-key or replayed ones (a man in the middle on the HTTP connection)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from kms_ws.client import KmsClient, KmsFault, UntrustedResponse
from kms_ws.client.addressing import AddressingPlugin
from kms_ws.client.signing import SignaturePlugin
from kms_ws.domain.errors import MessageSecurityError
from kms_ws.security.certificates import SERVER_CERT_FILE, self_signed
from kms_ws.wsman.addressing import must_understand
from kms_ws.xmlns import DS, KMS, WSMAN

from ..support import wsman
from ..support.envelopes import envelope, get_key
from ..support.server import ADMIN, ServerProcess
from ..support.signing import new_key
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
