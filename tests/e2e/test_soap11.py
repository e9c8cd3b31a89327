"""SOAP 1.1 for the §6 operations (the default of .NET basicHttpBinding, PHP, node-soap,
suds, Axis): text/xml and SOAPAction in, SOAP 1.1 out — same handlers, same credentials
(HTTP Basic, the kms:Credential session header, WS-Security signatures), the same
signature on responses, SOAP 1.1 faults carrying kms:KmsFault. WS-Management stays SOAP
1.2: a SOAP 1.1 request for it is a SOAP 1.1 VersionMismatch with the SOAP 1.2 Upgrade
header. Every message is validated (SOAP 1.1: schemas/ws/soap11-envelope.xsd)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator

import pytest
import requests
import zeep
from cryptography import x509
from lxml import etree
from zeep.transports import Transport

from kms_ws.client import KmsClient
from kms_ws.client.signing import RESPONSE_HEADERS, server_resolver
from kms_ws.security import wssecurity
from kms_ws.security.settings import SecuritySettings
from kms_ws.wsman import addressing
from kms_ws.xmlns import KMS, SOAP, SOAP11, WSA, WSMID, WSSE, action

from ..support import envelopes as E
from ..support import wsman as W
from ..support.server import ADMIN, ServerProcess
from ..support.signing import register_signer, signed, utcnow
from ..support.validating import ValidatingPlugin, post, post11

pytestmark = pytest.mark.e2e
NS = {"s": SOAP11, "wsa": WSA, "kms": KMS, "upg": SOAP}
RANDOM = "<kms:GetRandomBytes><kms:NumberOfBytes>16</kms:NumberOfBytes></kms:GetRandomBytes>"


@pytest.fixture(scope="module")
def server_cert(server: ServerProcess) -> x509.Certificate:
    return x509.load_pem_x509_certificate(
        requests.get(server.url + "?signing-cert", timeout=10).content)


class Soap11:
    """Raw SOAP 1.1 calls as a WSDL-driven SOAP 1.1 client makes them, each response
    checked: 200 or a 500 fault, text/xml, schema-valid, signed by the server over Body,
    Timestamp and RelatesTo (this request's MessageID), wsa:Action the operation's."""

    def __init__(self, url: str, cert: x509.Certificate) -> None:
        self.url, self.cert = url, cert

    def call(self, op: str, body: str, *, auth: tuple[str, str] | None = None,
             headers: str = "", message: bytes | None = None,
             expect: int = 200) -> etree._Element:
        mid = f"uuid:{uuid.uuid4()}"
        msg = message or E.envelope11(body, op=op, url=self.url, message_id=mid,
                                      headers=headers)
        r, env = post11(self.url, msg, action=action(op), auth=auth)
        assert r.status_code == expect, r.text
        assert r.headers["Content-Type"] == "text/xml;charset=UTF-8" and env is not None
        verified = wssecurity.verify(env, server_resolver(self.cert), SecuritySettings(),
                                     utcnow())
        wssecurity.require_signed(verified, RESPONSE_HEADERS)
        signed = addressing.read(verified.header)
        sent_mid = etree.fromstring(msg).findtext(f"{{{SOAP11}}}Header/{{{WSA}}}MessageID")
        assert signed.relates_to == sent_mid
        sec = env.find(f"s:Header/{{{WSSE}}}Security", NS)
        assert sec.get(f"{{{SOAP11}}}mustUnderstand") is None  # a client may ignore it
        assert sec.get(f"{{{SOAP}}}mustUnderstand") is None  # no SOAP 1.2 attribute here
        if expect == 200:
            assert signed.action == action(op + "Response")
            return verified.body.find(f"{{{KMS}}}{op}Response")
        return verified.body.find(f"{{{SOAP11}}}Fault")


@pytest.fixture()
def soap11(server: ServerProcess, server_cert: x509.Certificate) -> Soap11:
    return Soap11(server.url, server_cert)


def _text(el: etree._Element, path: str) -> str:
    return el.findtext(path, namespaces=NS) or ""


def test_every_client_operation_over_soap11_with_basic(soap11: Soap11) -> None:
    caps = soap11.call("GetServerCapabilities", "<kms:GetServerCapabilities/>", auth=ADMIN)
    names = [c.text for c in caps.iterfind("kms:Capabilities/kms:Capability/kms:Name", NS)]
    assert names
    agreed = soap11.call("NegotiateCapabilities", "<kms:NegotiateCapabilities><kms:Capabilities>"
                         f"<kms:Capability><kms:Name>{names[0]}</kms:Name></kms:Capability>"
                         "</kms:Capabilities></kms:NegotiateCapabilities>", auth=ADMIN)
    assert _text(agreed, "kms:Capabilities/kms:Capability/kms:Name") == names[0]
    name = f"soap11-{uuid.uuid4().hex[:8]}"
    created = soap11.call("CreateKey", f"<kms:CreateKey><kms:FriendlyName>{name}"
                          "</kms:FriendlyName><kms:KeyLength>256</kms:KeyLength>"
                          "</kms:CreateKey>", auth=ADMIN)
    key_id = _text(created, "kms:Key/kms:KeyId")
    value = _text(created, "kms:Key/kms:KeyBlob/kms:Data")
    assert len(base64.b64decode(value)) == 32
    by_id = soap11.call("GetKey", E.get_key(key_id), auth=ADMIN)
    assert _text(by_id, "kms:Key/kms:KeyBlob/kms:Data") == value
    by_name = soap11.call("GetKey", f"<kms:GetKey><kms:FriendlyName>{name}</kms:FriendlyName>"
                          "</kms:GetKey>", auth=ADMIN)
    assert _text(by_name, "kms:Key/kms:KeyId") == key_id
    stored_value = base64.b64encode(b"\x11" * 32).decode()
    stored = soap11.call("StoreKey", "<kms:StoreKey><kms:KeyBlob><kms:ProtocolVersion>1"
                         "</kms:ProtocolVersion><kms:WrappingType>none</kms:WrappingType>"
                         f"<kms:Length>32</kms:Length><kms:Data>{stored_value}</kms:Data>"
                         "</kms:KeyBlob></kms:StoreKey>", auth=ADMIN)
    got = soap11.call("GetKey", E.get_key(_text(stored, "kms:KeyId")), auth=ADMIN)
    assert _text(got, "kms:Key/kms:KeyBlob/kms:Data") == stored_value
    pushed = soap11.call("PushAuditMessage", f"<kms:PushAuditMessage><kms:AuditMessage>"
                         f"<kms:KeyId>{key_id}</kms:KeyId><kms:Event>Used</kms:Event>"
                         "</kms:AuditMessage></kms:PushAuditMessage>", auth=ADMIN)
    assert _text(pushed, "kms:Accepted") == "1"
    rnd = soap11.call("GetRandomBytes", RANDOM, auth=ADMIN)
    assert len(base64.b64decode(_text(rnd, "kms:RandomBytes"))) == 16


def test_a_session_from_authenticate_carries_later_calls(soap11: Soap11) -> None:
    login = soap11.call("Authenticate", "<kms:Authenticate><kms:RequestType>Login"
                        "</kms:RequestType></kms:Authenticate>", auth=ADMIN)
    token = _text(login, "kms:Credential/kms:SessionToken")
    assert token and _text(login, "kms:State") == "Authenticated"
    session = (f"<kms:Credential><kms:CredentialType>Session</kms:CredentialType>"
               f"<kms:SessionToken>{token}</kms:SessionToken></kms:Credential>")
    rnd = soap11.call("GetRandomBytes", RANDOM, headers=session)  # no HTTP Basic
    assert len(base64.b64decode(_text(rnd, "kms:RandomBytes"))) == 16
    soap11.call("Authenticate", "<kms:Authenticate><kms:RequestType>Logout</kms:RequestType>"
                f"{session}</kms:Authenticate>", headers=session)
    fault = soap11.call("GetRandomBytes", RANDOM, headers=session, expect=500)
    assert _text(fault, "faultcode") == "wsman:AccessDenied"
    assert _text(fault, "detail/kms:KmsFault/kms:ErrorCode") == "E_INVALID_CREDENTIALS"


def test_a_signed_soap11_request(soap11: Soap11, admin: KmsClient) -> None:
    signer = register_signer(admin)
    msg = signed(RANDOM, "GetRandomBytes", signer.key, soap11=True)
    assert etree.fromstring(msg).find(f"{{{SOAP11}}}Header/{{{WSSE}}}Security").get(
        f"{{{SOAP11}}}mustUnderstand") == "1"
    rnd = soap11.call("GetRandomBytes", "", message=msg)
    assert len(base64.b64decode(_text(rnd, "kms:RandomBytes"))) == 16
    # the signature covers the Body: a changed one is refused, as in SOAP 1.2
    tampered = msg.replace(b">16</kms:NumberOfBytes>", b">32</kms:NumberOfBytes>")
    fault = soap11.call("GetRandomBytes", "", message=tampered, expect=500)
    assert _text(fault, "faultcode") == "wsse:FailedCheck"
    assert fault.find("faultcode").nsmap["wsse"] == WSSE


def test_a_typed_fault_in_soap11(soap11: Soap11) -> None:
    fault = soap11.call("GetKey", E.get_key(str(uuid.uuid4())), auth=ADMIN, expect=500)
    code = fault.find("faultcode")
    prefix, local = code.text.split(":")
    assert (code.nsmap[prefix], local) == (KMS, "NotFound")  # a declared, qualified code
    assert _text(fault, "faultstring")
    assert _text(fault, "detail/kms:KmsFault/kms:ErrorCode") == "E_KEY_NOT_FOUND"
    assert _text(fault, "detail/kms:KmsFault/kms:RequestId")


def test_http_authentication_failure_is_401_in_soap11_too(server: ServerProcess) -> None:
    r, env = post11(server.url, E.envelope11(RANDOM, op="GetRandomBytes", url=server.url),
                    action=action("GetRandomBytes"), auth=(ADMIN[0], "not-the-password"))
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic ")
    assert env.findtext("s:Body/s:Fault/faultcode", namespaces=NS) == "wsman:AccessDenied"


@pytest.mark.parametrize("request_", ["identify", "enumerate", "transfer-get"])
def test_ws_management_in_soap11_is_a_version_mismatch_with_upgrade(
        server: ServerProcess, request_: str) -> None:
    soap12 = {"identify": W.identify(),
              "enumerate": W.enumerate_(W.optimized(10) + W.update_filter("AllKeys")),
              "transfer-get": W.get(str(uuid.uuid4()))}[request_]
    doc = soap12.replace(SOAP.encode(), SOAP11.encode())
    r, env = post11(server.url, doc, auth=ADMIN, validate_request=False)
    assert r.status_code == 500 and r.headers["Content-Type"].startswith("text/xml")
    assert env.findtext("s:Body/s:Fault/faultcode", namespaces=NS) == "s:VersionMismatch"
    supported = env.findall("s:Header/upg:Upgrade/upg:SupportedEnvelope", NS)
    assert len(supported) == 1
    prefix, local = supported[0].get("qname").split(":")
    assert (supported[0].nsmap[prefix], local) == (SOAP, "Envelope")


def test_an_unknown_envelope_is_a_soap12_version_mismatch_naming_both(
        server: ServerProcess) -> None:
    r, env = post(server.url, b"<e:Envelope xmlns:e='urn:example:soap-3'><e:Body/>"
                  b"</e:Envelope>", auth=ADMIN, validate_request=False)
    assert r.status_code == 500
    assert env.findtext(f"{{{SOAP}}}Body/{{{SOAP}}}Fault/{{{SOAP}}}Code/{{{SOAP}}}Value") == \
        "s:VersionMismatch"
    qnames = [(se.nsmap[se.get("qname").split(":")[0]], se.get("qname").split(":")[1])
              for se in env.iterfind(f"{{{SOAP}}}Header/{{{SOAP}}}Upgrade/"
                                     f"{{{SOAP}}}SupportedEnvelope")]
    assert qnames == [(SOAP, "Envelope"), (SOAP11, "Envelope")]


def test_soap11_routing(server: ServerProcess) -> None:
    body11 = E.envelope11(RANDOM, addressing=False)
    # SOAPAction alone (what SOAP 1.1 stacks send without WS-Addressing)
    r, env = post11(server.url, body11, action=action("GetRandomBytes"), auth=ADMIN)
    assert r.status_code == 200 and env.find("s:Body/kms:GetRandomBytesResponse", NS) is not None
    # an empty SOAPAction: the Body's element
    r, env = post11(server.url, body11, auth=ADMIN)
    assert r.status_code == 200 and env.find("s:Body/kms:GetRandomBytesResponse", NS) is not None
    # SOAPAction and wsa:Action naming different operations
    both = E.envelope11(RANDOM, op="GetRandomBytes", url=server.url)
    r, env = post11(server.url, both, action=action("GetKey"), auth=ADMIN)
    assert r.status_code == 500
    fault = env.find("s:Body/s:Fault", NS)
    assert _text(fault, "faultcode") == "wsa:InvalidMessageInformationHeader"
    assert _text(fault, "detail/kms:KmsFault/kms:ErrorCode") == "E_ACTION_MISMATCH"


def test_soap11_must_understand(server: ServerProcess) -> None:
    extra = '<x:Secret xmlns:x="urn:example:unknown" s:mustUnderstand="1">1</x:Secret>'
    r, env = post11(server.url, E.envelope11(RANDOM, op="GetRandomBytes", url=server.url,
                                             headers=extra),
                    action=action("GetRandomBytes"), auth=ADMIN, validate_request=False)
    assert r.status_code == 500
    assert env.findtext("s:Body/s:Fault/faultcode", namespaces=NS) == "s:MustUnderstand"
    # a SOAP 1.2 mustUnderstand attribute means nothing in a SOAP 1.1 envelope
    extra12 = (f'<x:Secret xmlns:x="urn:example:unknown" xmlns:e="{SOAP}" '
               'e:mustUnderstand="true">1</x:Secret>')
    r, env = post11(server.url, E.envelope11(RANDOM, op="GetRandomBytes", url=server.url,
                                             headers=extra12),
                    action=action("GetRandomBytes"), auth=ADMIN, validate_request=False)
    assert r.status_code == 200


@pytest.fixture()
def zeep11(server: ServerProcess) -> Iterator[tuple[zeep.Client, ValidatingPlugin]]:
    session = requests.Session()
    session.auth = ADMIN
    validator = ValidatingPlugin(soap11=True)
    client = zeep.Client(server.url + "?wsdl", transport=Transport(session=session),
                         plugins=[validator])
    yield client, validator
    session.close()


def test_zeep_bound_to_the_served_soap11_port(zeep11) -> None:  # type: ignore[no-untyped-def]
    client, validator = zeep11
    svc = client.bind("KmsService", "KmsSoap11Port")  # the address from the served WSDL
    created = svc.CreateKey(FriendlyName="from-zeep-soap11", KeyLength=128)
    assert len(created.KeyBlob.Data) == 16
    assert svc.GetKey(KeyId=created.KeyId).Key[0].KeyBlob.Data == created.KeyBlob.Data
    assert len(svc.GetRandomBytes(NumberOfBytes=10)) == 10
    with pytest.raises(zeep.exceptions.Fault) as err:
        svc.GetKey(KeyId=str(uuid.uuid4()))
    assert err.value.code == "kms:NotFound"
    assert err.value.detail.findtext(f"{{{KMS}}}KmsFault/{{{KMS}}}ErrorCode") == \
        "E_KEY_NOT_FOUND"
    assert validator.sent == validator.received == 4


def test_identify_stays_soap12(server: ServerProcess) -> None:
    r, env = post(server.url, W.identify(), auth=ADMIN)
    assert r.status_code == 200 and env.find(f".//{{{WSMID}}}IdentifyResponse") is not None
