"""Every bad input gets its SOAP 1.2 fault, the right HTTP status, and changes nothing."""

from __future__ import annotations

import base64
import uuid

import pytest
import requests
from lxml import etree

from kms_ws.xmlns import FAULT_DETAIL, KMS, SOAP, WSA, WSE, WSEN, WSMAN, WSSE, WXF

from ..support import envelopes as E
from ..support.db import snapshot
from ..support.server import ADMIN, ServerProcess
from ..support.validating import post

pytestmark = pytest.mark.e2e
NS = {"s": SOAP, "wsa": WSA, "wsman": WSMAN, "kms": KMS}


def fault_of(env: etree._Element) -> tuple[str, str | None, str, str | None]:
    """(Code, Subcode as prefix:local, Reason, kms ErrorCode) of a fault envelope."""
    fault = env.find("s:Body/s:Fault", NS)
    assert fault is not None, etree.tostring(env)
    code = fault.findtext("s:Code/s:Value", namespaces=NS)
    sub_el = fault.find("s:Code/s:Subcode/s:Value", NS)
    sub = None
    if sub_el is not None:
        prefix, local = sub_el.text.split(":")
        ns = sub_el.nsmap[prefix]  # the prefix must be declared in scope
        sub = {WSMAN: "wsman", WSA: "wsa", KMS: "kms", WSEN: "wsen", WSE: "wse",
               WXF: "wxf", WSSE: "wsse"}[ns] + ":" + local
    reason = fault.findtext("s:Reason/s:Text", namespaces=NS)
    return code, sub, reason, fault.findtext("s:Detail/kms:KmsFault/kms:ErrorCode", namespaces=NS)


@pytest.fixture()
def unchanged(server: ServerProcess):  # type: ignore[no-untyped-def]
    before = snapshot(server.data_dir)
    yield
    assert snapshot(server.data_dir) == before


def test_malformed_xml(server: ServerProcess, unchanged) -> None:  # type: ignore[no-untyped-def]
    r, env = post(server.url, b"<s:Envelope xmlns:s='" + SOAP.encode() + b"'><s:Body>",
                  auth=ADMIN, validate_request=False)
    assert r.status_code == 400
    assert fault_of(env)[:2] == ("s:Sender", "wsman:SchemaValidationError")


BOMB = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b'<s:Envelope xmlns:s="' + SOAP.encode() + b'"><s:Body>&lol2;</s:Body></s:Envelope>')
XXE = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       b'<s:Envelope xmlns:s="' + SOAP.encode() + b'"><s:Body>&xxe;</s:Body></s:Envelope>')


@pytest.mark.parametrize("doc", [BOMB, XXE], ids=["entity-expansion", "xxe"])
def test_dtd_and_entities_are_refused(server: ServerProcess, unchanged, doc: bytes) -> None:  # type: ignore[no-untyped-def]
    r, env = post(server.url, doc, auth=ADMIN, validate_request=False)
    assert r.status_code == 400
    code, sub, reason, _ = fault_of(env)
    assert sub == "wsman:SchemaValidationError" and "DTD" in reason
    assert b"root:" not in r.content


def test_oversize_body(server: ServerProcess, unchanged) -> None:  # type: ignore[no-untyped-def]
    padding = "<!--" + "x" * (600 * 1024) + "-->"
    body = E.envelope(E.create_key() + padding, op="CreateKey", url=server.url)
    r, env = post(server.url, body, auth=ADMIN, validate_request=False)
    assert r.status_code == 400
    assert fault_of(env)[1] == "wsman:EncodingLimit"


def test_deep_nesting_is_refused(server: ServerProcess, unchanged) -> None:  # type: ignore[no-untyped-def]
    deep = "<a>" * 200 + "</a>" * 200
    body = E.envelope(f"<kms:CreateKey>{deep}</kms:CreateKey>", op="CreateKey", url=server.url)
    r, env = post(server.url, body, auth=ADMIN, validate_request=False)
    assert r.status_code == 400 and fault_of(env)[1] == "wsman:EncodingLimit"


@pytest.mark.parametrize("body", [
    "<kms:GetKey><kms:KeyId>not-a-guid</kms:KeyId></kms:GetKey>",
    "<kms:GetKey><kms:Unknown/></kms:GetKey>",
    "<kms:GetRandomBytes><kms:NumberOfBytes>65537</kms:NumberOfBytes></kms:GetRandomBytes>",
    "<kms:CreateKey><kms:KeyLength>100</kms:KeyLength></kms:CreateKey>",
], ids=["bad-guid", "unknown-element", "random-over-bound", "bad-length"])
def test_schema_invalid_messages(server: ServerProcess, unchanged, body: str) -> None:  # type: ignore[no-untyped-def]
    op = etree.fromstring(f'<r xmlns:kms="{KMS}">{body}</r>')[0].tag.split("}")[1]
    r, env = post(server.url, E.envelope(body, op=op, url=server.url), auth=ADMIN,
                  validate_request=False)
    assert r.status_code == 400
    code, sub, reason, error = fault_of(env)
    assert (code, sub, error) == ("s:Sender", "wsman:SchemaValidationError",
                                  "E_SCHEMA_VALIDATION")


def test_unknown_action(server: ServerProcess, unchanged) -> None:  # type: ignore[no-untyped-def]
    body = E.envelope(E.create_key(), op="DestroyEverything", url=server.url)
    r, env = post(server.url, body, auth=ADMIN, validate_request=False)
    assert r.status_code == 400
    assert fault_of(env)[1] == "wsa:ActionNotSupported"
    assert env.findtext("s:Header/wsa:Action", namespaces=NS) == WSA + "/fault"


def test_action_and_body_disagree(server: ServerProcess, unchanged) -> None:  # type: ignore[no-untyped-def]
    body = E.envelope(E.create_key(), op="GetKey", url=server.url)
    r, env = post(server.url, body, auth=ADMIN, validate_request=False)
    assert r.status_code == 400 and fault_of(env)[1] == "wsman:SchemaValidationError"


def test_unknown_key(server: ServerProcess) -> None:
    mid = f"uuid:{uuid.uuid4()}"
    r, env = post(server.url, E.envelope(E.get_key(str(uuid.uuid4())), op="GetKey",
                                         url=server.url, message_id=mid), auth=ADMIN)
    assert r.status_code == 400
    code, sub, _, error = fault_of(env)
    assert (code, sub, error) == ("s:Sender", "kms:NotFound", "E_KEY_NOT_FOUND")
    assert env.findtext("s:Header/wsa:RelatesTo", namespaces=NS) == mid
    assert env.find("s:Body/s:Fault/s:Detail/kms:KmsFault/kms:RequestId", NS) is not None


def test_no_credentials(server: ServerProcess, unchanged) -> None:  # type: ignore[no-untyped-def]
    r, env = post(server.url, E.envelope(E.create_key(), op="CreateKey", url=server.url))
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
    _, sub, _, error = fault_of(env)
    assert (sub, error) == ("wsman:AccessDenied", "E_ACCESS_DENIED")


def test_wrong_password(server: ServerProcess, unchanged) -> None:  # type: ignore[no-untyped-def]
    before = snapshot(server.data_dir)
    r, env = post(server.url, E.envelope(E.create_key(), op="CreateKey", url=server.url),
                  auth=(ADMIN[0], "not-the-password"))
    assert r.status_code == 401
    assert fault_of(env)[3] == "E_INVALID_CREDENTIALS"
    assert snapshot(server.data_dir)["keys"] == before["keys"]


def test_non_basic_authorization_header(server: ServerProcess, unchanged) -> None:  # type: ignore[no-untyped-def]
    r, env = post(server.url, E.envelope(E.create_key(), op="CreateKey", url=server.url),
                  headers={"Authorization": "Bearer abc"})
    assert r.status_code == 401 and fault_of(env)[1] == "wsman:AccessDenied"


def test_unsupported_credential_type(server: ServerProcess, unchanged) -> None:  # type: ignore[no-untyped-def]
    value = base64.b64encode(b"k" * 32).decode()
    cred = (f"<kms:Credential><kms:CredentialType>SymmetricKey</kms:CredentialType>"
            f"<kms:CredentialValue><kms:Length>32</kms:Length><kms:Value>{value}</kms:Value>"
            f"</kms:CredentialValue></kms:Credential>")
    r, env = post(server.url, E.envelope(E.create_key(), op="CreateKey", url=server.url,
                                         headers=cred))
    assert r.status_code == 400
    code, sub, _, error = fault_of(env)
    assert (sub, error) == ("wsman:UnsupportedFeature", "E_UNSUPPORTED_AUTHENTICATION_MODE")
    assert env.findtext("s:Body/s:Fault/s:Detail/wsman:FaultDetail", namespaces=NS) == \
        FAULT_DETAIL + "AuthorizationMode"


def test_an_envelope_of_no_soap_version_gets_version_mismatch(  # type: ignore[no-untyped-def]
        server: ServerProcess, unchanged) -> None:
    """(SOAP 1.1 is answered in SOAP 1.1 for the §6 operations: test_soap11.py.)"""
    doc = (b'<e:Envelope xmlns:e="http://www.w3.org/2001/12/soap-envelope"><e:Body>'
           b'<kms:GetRandomBytes xmlns:kms="' + KMS.encode() + b'"><kms:NumberOfBytes>1'
           b'</kms:NumberOfBytes></kms:GetRandomBytes></e:Body></e:Envelope>')
    r, env = post(server.url, doc, auth=ADMIN, validate_request=False)
    assert r.status_code == 500 and fault_of(env)[0] == "s:VersionMismatch"


def test_must_understand_header_we_do_not_process(server: ServerProcess, unchanged) -> None:  # type: ignore[no-untyped-def]
    extra = '<x:Secret xmlns:x="urn:example:unknown" s:mustUnderstand="true">1</x:Secret>'
    r, env = post(server.url, E.envelope(E.create_key(), op="CreateKey", url=server.url,
                                         headers=extra), auth=ADMIN, validate_request=False)
    assert r.status_code == 500 and fault_of(env)[0] == "s:MustUnderstand"
    nu = env.find("s:Header/s:NotUnderstood", NS)
    assert nu is not None and nu.get("qname").endswith(":Secret")


def test_unqualified_must_understand_on_known_headers_is_fine(server: ServerProcess) -> None:
    r, env = post(server.url, E.envelope(
        "<kms:GetRandomBytes><kms:NumberOfBytes>4</kms:NumberOfBytes></kms:GetRandomBytes>",
        addressing=False,
        headers=(f'<wsa:Action mustUnderstand="true">{KMS}/GetRandomBytes</wsa:Action>'
                 f'<wsa:MessageID mustUnderstand="true">{uuid.uuid4()}</wsa:MessageID>'
                 '<wsa:To mustUnderstand="true">http://elsewhere.example/wsman</wsa:To>')),
        auth=ADMIN)
    assert r.status_code == 200
    assert env.find("s:Body/kms:GetRandomBytesResponse", NS) is not None


def test_response_addressing_headers(server: ServerProcess) -> None:
    mid = f"uuid:{uuid.uuid4()}"
    r, env = post(server.url, E.envelope(
        "<kms:GetRandomBytes><kms:NumberOfBytes>8</kms:NumberOfBytes></kms:GetRandomBytes>",
        op="GetRandomBytes", url=server.url, message_id=mid), auth=ADMIN)
    assert r.status_code == 200
    h = env.find("s:Header", NS)
    assert h.findtext("wsa:Action", namespaces=NS) == f"{KMS}/GetRandomBytesResponse"
    assert h.findtext("wsa:RelatesTo", namespaces=NS) == mid
    assert h.findtext("wsa:MessageID", namespaces=NS).startswith("uuid:")
    assert h.findtext("wsa:To", namespaces=NS) == WSA + "/role/anonymous"


def test_routing_without_ws_addressing(server: ServerProcess) -> None:
    body = "<kms:GetRandomBytes><kms:NumberOfBytes>3</kms:NumberOfBytes></kms:GetRandomBytes>"
    # 1. the SOAP 1.2 action parameter of the Content-Type (WSDL-driven stacks)
    r, env = post(server.url, E.envelope(body, addressing=False), auth=ADMIN, headers={
        "Content-Type": f'application/soap+xml;charset=UTF-8;action="{KMS}/GetRandomBytes"'})
    assert r.status_code == 200 and env.find("s:Body/kms:GetRandomBytesResponse", NS) is not None
    # 2. nothing but the Body's element
    r, env = post(server.url, E.envelope(body, addressing=False), auth=ADMIN)
    assert r.status_code == 200 and env.find("s:Body/kms:GetRandomBytesResponse", NS) is not None
    assert env.find("s:Header/wsa:RelatesTo", NS) is None


def test_get_and_other_methods(server: ServerProcess) -> None:
    assert requests.get(server.url, timeout=10).status_code == 405
    assert requests.get(server.url.replace("/wsman", "/other"), timeout=10).status_code == 404


def test_configurable_size_limit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    srv = ServerProcess(tmp_path / "data", security={"max_message_bytes": 2048}, workers=1)
    srv.bootstrap()
    srv.start()
    try:
        small = E.envelope("<kms:GetRandomBytes><kms:NumberOfBytes>1</kms:NumberOfBytes>"
                           "</kms:GetRandomBytes>", op="GetRandomBytes", url=srv.url)
        assert post(srv.url, small, auth=ADMIN)[0].status_code == 200
        big = E.envelope(E.create_key("n" * 200) + " " * 2048, op="CreateKey", url=srv.url)
        r, env = post(srv.url, big, auth=ADMIN)
        assert r.status_code == 400 and fault_of(env)[1] == "wsman:EncodingLimit"
        assert snapshot(srv.data_dir)["keys"] == 0
    finally:
        assert srv.stop() == 0
