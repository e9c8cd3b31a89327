"""The tools the toolkit tests judge the wire with: the SOAP 1.1/1.2 check refuses what
schemas/ refuses in either version, and the recording TLS relay passes and keeps messages
byte for byte, in plaintext, and talks only to a server its CA vouches for."""

from __future__ import annotations

import base64
import http.client
import ssl
import uuid
from pathlib import Path

import pytest
import requests

from kms_ws.xmlns import KMS, SOAP, SOAP11

from ..support.envelopes import envelope, get_key
from ..support.pki import CA
from ..support.recorder import Recorder
from ..support.server import ADMIN
from ..support.validating import CT
from ..support.wire_check import soap_version, validate_soap
from .conftest import Interop

TOKEN = "A" * 43
KEY_ID = str(uuid.uuid4())


def soap11(body: str, header: str = "") -> bytes:
    return (f'<e:Envelope xmlns:e="{SOAP11}" xmlns:kms="{KMS}">'
            + (f"<e:Header>{header}</e:Header>" if header else "")
            + f"<e:Body>{body}</e:Body></e:Envelope>").encode()


SESSION = (f"<kms:Credential><kms:CredentialType>Session</kms:CredentialType>"
           f"<kms:SessionToken>{TOKEN}</kms:SessionToken></kms:Credential>")


def fault11(parts: str) -> bytes:
    return soap11(f"<e:Fault>{parts}</e:Fault>")


DETAIL = ("<detail><kms:KmsFault><kms:ErrorCode>E_KEY_NOT_FOUND</kms:ErrorCode>"
          "</kms:KmsFault></detail>")


def test_valid_soap11_messages_pass() -> None:
    assert soap_version(soap11(get_key(KEY_ID), SESSION)) == "1.1"
    validate_soap(soap11(get_key(KEY_ID), SESSION))
    validate_soap(fault11(f"<faultcode>e:Client</faultcode><faultstring>no key</faultstring>"
                          f"{DETAIL}"))
    validate_soap(fault11("<faultcode>e:Server.Busy</faultcode><faultstring>x</faultstring>"))
    validate_soap(fault11(f"<faultcode>kms:NotFound</faultcode><faultstring>x</faultstring>"
                          f"{DETAIL}"))  # a code of the fault's own authority


@pytest.mark.parametrize("message", [
    soap11("<kms:GetKey><kms:KeyId>not-a-guid</kms:KeyId></kms:GetKey>"),  # Body payload
    soap11(get_key(KEY_ID), SESSION.replace(TOKEN, "short")),  # header block
    soap11("<kms:NoSuchOperation/>"),  # undeclared element of our namespace
    soap11("<GetKey/>"),  # unqualified Body entry
    soap11(get_key(KEY_ID) + "<e:Fault><faultcode>e:Client</faultcode>"
           "<faultstring>x</faultstring></e:Fault>"),  # a Fault is alone in its Body
    fault11("<faultcode>e:Client</faultcode>"),  # no faultstring
    fault11("<faultstring>x</faultstring><faultcode>e:Client</faultcode>"),  # order
    fault11("<faultcode>nope:Client</faultcode><faultstring>x</faultstring>"),  # no prefix
    fault11("<faultcode>e:Client</faultcode><faultstring>x</faultstring><detail>"
            "<kms:KmsFault><kms:RequestId>r</kms:RequestId></kms:KmsFault></detail>"),
    f'<e:Envelope xmlns:e="{SOAP11}"><e:Body/><e:Header/></e:Envelope>'.encode(),
    envelope(get_key("not-a-guid"), op="GetKey"),  # SOAP 1.2: the whole-envelope check
], ids=["body", "header", "undeclared", "unqualified", "fault-not-alone", "no-faultstring",
        "fault-order", "faultcode-prefix", "detail", "body-before-header", "soap12"])
def test_invalid_messages_are_refused(message: bytes) -> None:
    with pytest.raises(AssertionError):
        validate_soap(message)


def test_recorder_relays_and_keeps_every_byte(interop: Interop) -> None:
    server, pki = interop.server, interop.pki
    with Recorder(server.url, cert=pki.issue("relay-check", server=True)[:2],
                  ca=pki.pem) as recorder:
        wsdl = requests.get(recorder.url("/wsman?wsdl"), timeout=10, verify=str(pki.pem))
        # the served WSDL names the relay (https: the server saw TLS), so generated clients
        # talk through it
        assert recorder.url().startswith("https://")
        assert recorder.url().encode() in wsdl.content
        assert server.url.encode() not in wsdl.content
        message = envelope("<kms:GetRandomBytes><kms:NumberOfBytes>8</kms:NumberOfBytes>"
                           "</kms:GetRandomBytes>", op="GetRandomBytes")
        conn = http.client.HTTPSConnection("127.0.0.1", recorder.port, timeout=30,
                                           context=ssl.create_default_context(cafile=pki.pem))
        # chunked, as some toolkits send
        conn.putrequest("POST", "/wsman")
        conn.putheader("Content-Type", CT)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.putheader("Authorization",
                       "Basic " + base64.b64encode(":".join(ADMIN).encode()).decode())
        conn.endheaders()
        for i in range(0, len(message), 100):
            piece = message[i:i + 100]
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.send(b"0\r\n\r\n")
        answer = conn.getresponse()
        content = answer.read()
        conn.close()
        get, post = recorder.since(0)
    assert (get.method, post.method, post.path) == ("GET", "POST", "/wsman")
    assert get.response == wsdl.content
    assert post.request == message and post.response == content
    assert answer.status == post.status == 200
    assert validate_soap(content).find(f".//{{{KMS}}}RandomBytes") is not None
    assert post.request_header("content-type") == CT
    assert validate_soap(post.request).tag == f"{{{SOAP}}}Envelope"


def test_recorder_relays_only_to_a_server_its_ca_vouches_for(interop: Interop,
                                                             tmp_path: Path) -> None:
    """The relay verifies the server's certificate: with another CA it passes nothing on
    (502) and records nothing."""
    other = CA(tmp_path / "other")
    with Recorder(interop.server.url, cert=other.issue("relay", server=True)[:2],
                  ca=other.pem) as recorder:
        answer = requests.get(recorder.url("/wsman?wsdl"), timeout=10, verify=str(other.pem))
        assert answer.status_code == 502
        assert "CERTIFICATE_VERIFY_FAILED" in answer.text
        assert recorder.since(0) == []
