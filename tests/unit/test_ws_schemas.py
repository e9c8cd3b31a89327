"""The WS-* schema subsets in schemas/ws/ and the test-side envelope validator.

Accept: real envelope shapes sent/received by WS-Management clients (wsmancli /
openwsman, WinRM/pywinrm).  Reject: malformed SOAP 1.2 faults, unknown
elements in our namespaces, wrongly typed WS-Management headers, ...
"""

from __future__ import annotations

import re
import warnings
import xml.etree.ElementTree as ET

import pytest
import xmlschema
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree

from kms_ws.security import wssecurity
from kms_ws.security.certificates import self_signed
from kms_ws.service.dispatch import utcnow
from tests.support.schema_check import (
    ALL_XSD,
    KMS_NS,
    SCHEMAS_DIR,
    get_schema,
    shipped_namespaces,
    validate_element,
    validate_envelope,
)

WS_DIR = SCHEMAS_DIR / "ws"

S = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
WSMID = "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"
WXF = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
WSEN = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
WSE = "http://schemas.xmlsoap.org/ws/2004/08/eventing"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
WSSE11 = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"

ANON = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
RESOURCE = "urn:kms-ws:p1619.3:1/Key"
KEY_ID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"

NSDECL = (
    f'xmlns:s="{S}" xmlns:wsa="{WSA}" xmlns:wsman="{WSMAN}" xmlns:wsmid="{WSMID}" '
    f'xmlns:wxf="{WXF}" xmlns:wsen="{WSEN}" xmlns:wse="{WSE}" xmlns:wsse="{WSSE}" '
    f'xmlns:wsu="{WSU}" xmlns:wsse11="{WSSE11}" xmlns:kms="{KMS_NS}"'
)


def envelope(header: str | None, body: str, extra_ns: str = "") -> bytes:
    """A SOAP 1.2 envelope with all our prefixes declared on the root."""
    head = "" if header is None else (f"<s:Header>{header}</s:Header>" if header else "<s:Header/>")
    return f"<s:Envelope {NSDECL} {extra_ns}>{head}<s:Body>{body}</s:Body></s:Envelope>".encode()


def check_rejected(xml, match: str | None = None) -> str:
    with pytest.raises(AssertionError) as info:
        validate_envelope(xml)
    msg = str(info.value)
    if match is not None:
        assert re.search(match, msg), msg
    return msg


# ============================================================== real shapes: accepted

IDENTIFY_REQUEST = f"""<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="{S}" xmlns:wsmid="{WSMID}">
  <s:Header/>
  <s:Body>
    <wsmid:Identify/>
  </s:Body>
</s:Envelope>""".encode()

# wsmancli / openwsman "wsman get"
WSMANCLI_GET = f"""<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="{S}" xmlns:wsa="{WSA}" xmlns:wsman="{WSMAN}">
  <s:Header>
    <wsa:To s:mustUnderstand="true">https://kms.example.org:5986/wsman</wsa:To>
    <wsman:ResourceURI s:mustUnderstand="true">{RESOURCE}</wsman:ResourceURI>
    <wsa:ReplyTo>
      <wsa:Address s:mustUnderstand="true">{ANON}</wsa:Address>
    </wsa:ReplyTo>
    <wsa:Action s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</wsa:Action>
    <wsman:MaxEnvelopeSize s:mustUnderstand="true">153600</wsman:MaxEnvelopeSize>
    <wsa:MessageID>uuid:a6b8f8b4-3c0e-1c0e-8002-7f0000010000</wsa:MessageID>
    <wsman:Locale xml:lang="en-US" s:mustUnderstand="false"/>
    <wsman:SelectorSet>
      <wsman:Selector Name="KeyId">{KEY_ID}</wsman:Selector>
    </wsman:SelectorSet>
    <wsman:OperationTimeout>PT60.000S</wsman:OperationTimeout>
  </s:Header>
  <s:Body/>
</s:Envelope>""".encode()

# WinRM-style (pywinrm): UNQUALIFIED mustUnderstand, an MS-namespace DataLocale
# and OptionSet, env/a/w prefixes.
WINRM_GET = f"""<env:Envelope xmlns:env="{S}" xmlns:a="{WSA}" xmlns:w="{WSMAN}"
    xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <env:Header>
    <a:To>http://kms.example.org:5985/wsman</a:To>
    <a:ReplyTo><a:Address mustUnderstand="true">{ANON}</a:Address></a:ReplyTo>
    <w:MaxEnvelopeSize mustUnderstand="true">153600</w:MaxEnvelopeSize>
    <a:MessageID>uuid:0F2E5B2A-7B4C-4B5E-9F3D-5A0B7E1C2D3E</a:MessageID>
    <w:Locale xml:lang="en-US" mustUnderstand="false"/>
    <p:DataLocale xml:lang="en-US" mustUnderstand="false"/>
    <w:OperationTimeout>PT20S</w:OperationTimeout>
    <w:ResourceURI mustUnderstand="true">{RESOURCE}</w:ResourceURI>
    <a:Action mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</a:Action>
    <w:OptionSet env:mustUnderstand="true">
      <w:Option Name="IncludeMetadata" Type="xsd:boolean">TRUE</w:Option>
    </w:OptionSet>
    <w:SelectorSet><w:Selector Name="KeyId">{KEY_ID}</w:Selector></w:SelectorSet>
  </env:Header>
  <env:Body/>
</env:Envelope>""".encode()

COMMON_REQUEST_HEADERS = f"""
    <wsa:To s:mustUnderstand="true">https://kms.example.org:5986/wsman</wsa:To>
    <wsman:ResourceURI s:mustUnderstand="true">{RESOURCE}</wsman:ResourceURI>
    <wsa:ReplyTo><wsa:Address s:mustUnderstand="true">{ANON}</wsa:Address></wsa:ReplyTo>
    <wsman:MaxEnvelopeSize s:mustUnderstand="true">153600</wsman:MaxEnvelopeSize>
    <wsa:MessageID>uuid:d5f5a0b2-0b1c-4c2e-8f4a-9c1e2d3f4a5b</wsa:MessageID>
    <wsman:Locale xml:lang="en-US" s:mustUnderstand="false"/>
    <wsman:OperationTimeout>PT60.000S</wsman:OperationTimeout>"""

OPTIMIZED_ENUMERATE = envelope(
    COMMON_REQUEST_HEADERS
    + """
    <wsa:Action s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate</wsa:Action>
    <wsman:RequestTotalItemsCountEstimate/>""",
    f"""
    <wsen:Enumerate>
      <wsman:OptimizeEnumeration/>
      <wsman:MaxElements>512</wsman:MaxElements>
      <wsman:EnumerationMode>EnumerateObjectAndEPR</wsman:EnumerationMode>
      <wsman:Filter Dialect="http://schemas.dmtf.org/wbem/wsman/1/wsman/SelectorFilter">
        <wsman:SelectorSet>
          <wsman:Selector Name="KeyId">{KEY_ID}</wsman:Selector>
        </wsman:SelectorSet>
      </wsman:Filter>
    </wsen:Enumerate>""",
)

PULL = envelope(
    COMMON_REQUEST_HEADERS
    + """
    <wsa:Action s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull</wsa:Action>""",
    """
    <wsen:Pull>
      <wsen:EnumerationContext>uuid:9a1b2c3d-0000-4000-8000-000000000001</wsen:EnumerationContext>
      <wsen:MaxTime>PT30S</wsen:MaxTime>
      <wsen:MaxElements>20</wsen:MaxElements>
    </wsen:Pull>""",
)

RESPONSE_HEADERS = """
    <wsa:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>
    <wsa:Action>{action}</wsa:Action>
    <wsa:MessageID>uuid:11111111-2222-4333-8444-555555555555</wsa:MessageID>
    <wsa:RelatesTo>uuid:d5f5a0b2-0b1c-4c2e-8f4a-9c1e2d3f4a5b</wsa:RelatesTo>"""

FAULT_ACCESS_DENIED = f"""<s:Envelope xmlns:s="{S}" xmlns:wsa="{WSA}" xmlns:wsman="{WSMAN}">
  <s:Header>{RESPONSE_HEADERS.format(action="http://schemas.dmtf.org/wbem/wsman/1/wsman/fault")}
  </s:Header>
  <s:Body>
    <s:Fault>
      <s:Code>
        <s:Value>s:Sender</s:Value>
        <s:Subcode>
          <s:Value>wsman:AccessDenied</s:Value>
        </s:Subcode>
      </s:Code>
      <s:Reason>
        <s:Text xml:lang="en-US">The sender was not authorized to access the resource.</s:Text>
      </s:Reason>
      <s:Detail>
        <wsman:FaultDetail>http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidValue</wsman:FaultDetail>
      </s:Detail>
    </s:Fault>
  </s:Body>
</s:Envelope>""".encode()

IDENTIFY_RESPONSE = f"""<s:Envelope xmlns:s="{S}" xmlns:wsmid="{WSMID}">
  <s:Header/>
  <s:Body>
    <wsmid:IdentifyResponse>
      <wsmid:ProtocolVersion>http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd</wsmid:ProtocolVersion>
      <wsmid:ProductVendor>kms-ws</wsmid:ProductVendor>
      <wsmid:ProductVersion>0.1.0</wsmid:ProductVersion>
      <wsmid:SecurityProfiles>
        <wsmid:SecurityProfileName>http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/basic</wsmid:SecurityProfileName>
        <wsmid:SecurityProfileName>http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual</wsmid:SecurityProfileName>
      </wsmid:SecurityProfiles>
    </wsmid:IdentifyResponse>
  </s:Body>
</s:Envelope>""".encode()


REAL_SHAPES = {
    "identify-request": IDENTIFY_REQUEST,
    "wsmancli-get": WSMANCLI_GET,
    "winrm-get-unqualified-mustUnderstand": WINRM_GET,
    "optimized-enumerate": OPTIMIZED_ENUMERATE,
    "pull": PULL,
    "fault-access-denied": FAULT_ACCESS_DENIED,
    "identify-response": IDENTIFY_RESPONSE,
}


@pytest.mark.parametrize("xml", REAL_SHAPES.values(), ids=REAL_SHAPES.keys())
def test_real_client_shapes_are_accepted(xml):
    root = validate_envelope(xml)
    assert isinstance(root, etree._Element)
    assert root.tag == f"{{{S}}}Envelope"


MORE_ACCEPTED = {
    "no-header": envelope(None, "<wsmid:Identify/>"),
    "optimized-enumerate-response-empty-items": envelope(
        RESPONSE_HEADERS.format(action=f"{WSEN}/EnumerateResponse"),
        """<wsen:EnumerateResponse>
             <wsen:EnumerationContext>uuid:9a1b2c3d-0000-4000-8000-000000000001</wsen:EnumerationContext>
             <wsman:Items/>
             <wsman:EndOfSequence/>
           </wsen:EnumerateResponse>""",
    ),
    "enumerate-response-object-and-epr-items": envelope(
        RESPONSE_HEADERS.format(action=f"{WSEN}/EnumerateResponse")
        + "<wsman:TotalItemsCountEstimate>1</wsman:TotalItemsCountEstimate>",
        f"""<wsen:EnumerateResponse>
             <wsen:Expires>PT10M</wsen:Expires>
             <wsen:EnumerationContext>ctx-1</wsen:EnumerationContext>
             <wsman:Items>
               <wsman:Item>
                 <x:Thing xmlns:x="urn:example:foreign">payload</x:Thing>
                 <wsa:EndpointReference>
                   <wsa:Address>{ANON}</wsa:Address>
                   <wsa:ReferenceParameters>
                     <wsman:ResourceURI>{RESOURCE}</wsman:ResourceURI>
                     <wsman:SelectorSet><wsman:Selector Name="KeyId">{KEY_ID}</wsman:Selector></wsman:SelectorSet>
                   </wsa:ReferenceParameters>
                 </wsa:EndpointReference>
               </wsman:Item>
             </wsman:Items>
           </wsen:EnumerateResponse>""",
    ),
    "total-items-nil": envelope(
        RESPONSE_HEADERS.format(action=f"{WSEN}/PullResponse")
        + '<wsman:TotalItemsCountEstimate xsi:nil="true"/>',
        """<wsen:PullResponse>
             <wsen:Items><x:Thing xmlns:x="urn:example:foreign"/></wsen:Items>
             <wsen:EndOfSequence/>
           </wsen:PullResponse>""",
        extra_ns='xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"',
    ),
    "release": envelope(
        COMMON_REQUEST_HEADERS + f"<wsa:Action>{WSEN}/Release</wsa:Action>",
        "<wsen:Release><wsen:EnumerationContext>ctx-1</wsen:EnumerationContext></wsen:Release>",
    ),
    "resource-created": envelope(
        RESPONSE_HEADERS.format(action=f"{WXF}/CreateResponse"),
        f"""<wxf:ResourceCreated>
             <wsa:Address>https://kms.example.org:5986/wsman</wsa:Address>
             <wsa:ReferenceParameters>
               <wsman:ResourceURI>{RESOURCE}</wsman:ResourceURI>
               <wsman:SelectorSet><wsman:Selector Name="KeyId">{KEY_ID}</wsman:Selector></wsman:SelectorSet>
             </wsa:ReferenceParameters>
           </wxf:ResourceCreated>""",
    ),
    "selector-with-nested-epr": envelope(
        COMMON_REQUEST_HEADERS
        + f"""<wsa:Action>{WXF}/Get</wsa:Action>
        <wsman:SelectorSet>
          <wsman:Selector Name="Owner">
            <wsa:EndpointReference><wsa:Address>{ANON}</wsa:Address></wsa:EndpointReference>
          </wsman:Selector>
        </wsman:SelectorSet>
        <wsman:FragmentTransfer s:mustUnderstand="true">KeyState</wsman:FragmentTransfer>""",
        "",
    ),
    "subscribe-pull-delivery": envelope(
        COMMON_REQUEST_HEADERS + f"<wsa:Action>{WSE}/Subscribe</wsa:Action>",
        """<wse:Subscribe>
             <wse:Delivery Mode="http://schemas.dmtf.org/wbem/wsman/1/wsman/Pull">
               <wsman:Heartbeats>PT60S</wsman:Heartbeats>
               <wsman:ConnectionRetry Total="3">PT10S</wsman:ConnectionRetry>
               <wsman:Locale xml:lang="en-US"/>
               <wsman:ContentEncoding>UTF-8</wsman:ContentEncoding>
             </wse:Delivery>
             <wse:Expires>PT1H</wse:Expires>
             <wsman:Filter Dialect="http://schemas.dmtf.org/wbem/wsman/1/wsman/SelectorFilter">
               <wsman:SelectorSet><wsman:Selector Name="KeyId">k1</wsman:Selector></wsman:SelectorSet>
             </wsman:Filter>
             <wsman:SendBookmarks/>
           </wse:Subscribe>""",
    ),
    "subscribe-push-and-response": envelope(
        f'<wsa:Action>{WSE}/SubscribeResponse</wsa:Action><wse:Identifier s:mustUnderstand="true">uuid:1</wse:Identifier>',
        """<wse:SubscribeResponse>
             <wse:SubscriptionManager>
               <wsa:Address>https://kms.example.org:5986/wsman</wsa:Address>
               <wsa:ReferenceProperties><wse:Identifier>uuid:1</wse:Identifier></wsa:ReferenceProperties>
             </wse:SubscriptionManager>
             <wse:Expires>2031-01-01T00:00:00Z</wse:Expires>
           </wse:SubscribeResponse>""",
    ),
    "events-with-ack": envelope(
        f"<wsa:Action>{WSMAN}/Events</wsa:Action><wsman:AckRequested/>",
        """<wsman:Events>
             <wsman:Event Action="urn:kms-ws:p1619.3:1/KeyStateChanged">
               <x:Changed xmlns:x="urn:example:foreign"/>
             </wsman:Event>
           </wsman:Events>""",
    ),
    "ws-security-header": envelope(
        f"""<wsa:Action>{WXF}/Get</wsa:Action>
        <wsse:Security s:mustUnderstand="true">
          <wsu:Timestamp wsu:Id="TS-1">
            <wsu:Created>2030-01-01T00:00:00Z</wsu:Created>
            <wsu:Expires>2030-01-01T00:05:00Z</wsu:Expires>
          </wsu:Timestamp>
          <wsse:BinarySecurityToken wsu:Id="X509-1"
              EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
              ValueType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3">MIIB</wsse:BinarySecurityToken>
          <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
            <ds:SignedInfo>
              <ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
              <ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>
              <ds:Reference URI="#Body-1">
                <ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>
                <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
                <ds:DigestValue>AAAA</ds:DigestValue>
              </ds:Reference>
            </ds:SignedInfo>
            <ds:SignatureValue>AAAA</ds:SignatureValue>
            <ds:KeyInfo>
              <wsse:SecurityTokenReference wsse11:TokenType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3">
                <wsse:Reference URI="#X509-1"/>
              </wsse:SecurityTokenReference>
            </ds:KeyInfo>
          </ds:Signature>
          <wsse11:SignatureConfirmation Value="AAAA"/>
        </wsse:Security>""",
        "",
    ).replace(b"<s:Body>", b'<s:Body wsu:Id="Body-1">'),
    "mustunderstand-fault-with-notunderstood": envelope(
        '<s:NotUnderstood qname="x:Frob" xmlns:x="urn:example:foreign"/>'
        f"<wsa:Action>{WSA}/fault</wsa:Action>",
        """<s:Fault>
             <s:Code><s:Value>s:MustUnderstand</s:Value></s:Code>
             <s:Reason>
               <s:Text xml:lang="en">Header not understood</s:Text>
               <s:Text xml:lang="de">Header nicht verstanden</s:Text>
             </s:Reason>
           </s:Fault>""",
    ),
    "version-mismatch-upgrade": envelope(
        '<s:Upgrade><s:SupportedEnvelope qname="s:Envelope"/></s:Upgrade>',
        """<s:Fault>
             <s:Code><s:Value>s:VersionMismatch</s:Value></s:Code>
             <s:Reason><s:Text xml:lang="en">Wrong version</s:Text></s:Reason>
           </s:Fault>""",
    ),
    "nested-subcodes-node-role": envelope(
        "",
        """<s:Fault>
             <s:Code>
               <s:Value>s:Receiver</s:Value>
               <s:Subcode><s:Value>wsman:InternalError</s:Value>
                 <s:Subcode><s:Value>kms:StoreUnavailable</s:Value></s:Subcode>
               </s:Subcode>
             </s:Code>
             <s:Reason><s:Text xml:lang="">x</s:Text></s:Reason>
             <s:Node>https://kms.example.org/wsman</s:Node>
             <s:Role>http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver</s:Role>
             <s:Detail/>
           </s:Fault>""",
    ),
    "foreign-namespace-payload-is-lax": envelope(
        '<x:Trace xmlns:x="urn:example:foreign" s:mustUnderstand="false">t</x:Trace>',
        '<x:Anything xmlns:x="urn:example:foreign"><x:Goes/></x:Anything>',
    ),
}


@pytest.mark.parametrize("xml", MORE_ACCEPTED.values(), ids=MORE_ACCEPTED.keys())
def test_more_valid_shapes_are_accepted(xml):
    assert validate_envelope(xml) is not None


@pytest.fixture(scope="module")
def libxml2_schema():
    return etree.XMLSchema(etree.parse(str(ALL_XSD), etree.XMLParser(no_network=True)))


@pytest.mark.parametrize(
    "xml",
    list(REAL_SHAPES.values()) + list(MORE_ACCEPTED.values()),
    ids=list(REAL_SHAPES) + list(MORE_ACCEPTED),
)
def test_libxml2_agrees_on_accepted_shapes(libxml2_schema, xml):
    """Second, independent XSD processor: the subsets are valid XSD and the
    accepted shapes are valid for libxml2 too (not just for xmlschema)."""
    doc = etree.fromstring(xml)
    assert libxml2_schema.validate(doc), libxml2_schema.error_log


@pytest.mark.parametrize(
    "convert",
    [
        lambda b: b,
        lambda b: b.decode(),
        lambda b: bytearray(b),
        lambda b: etree.fromstring(b),
        lambda b: etree.ElementTree(etree.fromstring(b)),
        lambda b: ET.fromstring(b),
    ],
    ids=["bytes", "str", "bytearray", "lxml-element", "lxml-tree", "etree-element"],
)
def test_input_types(convert):
    root = validate_envelope(convert(WSMANCLI_GET))
    assert isinstance(root, etree._Element)
    assert root.find(f"{{{S}}}Header/{{{WSMAN}}}MaxEnvelopeSize").text == "153600"


# ============================================================== rejected: SOAP 1.2 shape

FAULT_TMPL = "<s:Fault>{}</s:Fault>"
REASON = '<s:Reason><s:Text xml:lang="en">r</s:Text></s:Reason>'


@pytest.mark.parametrize(
    "fault, match",
    [
        # Code/Value must be one of the five SOAP 1.2 codes: the wsman subcode
        # belongs in Subcode/Value.
        (f"<s:Code><s:Value>wsman:AccessDenied</s:Value></s:Code>{REASON}", r"Value"),
        # Unknown SOAP code.
        (f"<s:Code><s:Value>s:Client</s:Value></s:Code>{REASON}", r"Value"),
        # Reason is mandatory.
        ("<s:Code><s:Value>s:Sender</s:Value></s:Code>", r"Reason"),
        # Code is mandatory / order is Code, Reason.
        (f"{REASON}<s:Code><s:Value>s:Sender</s:Value></s:Code>", r"Code|Reason"),
        # Reason/Text needs xml:lang.
        ("<s:Code><s:Value>s:Sender</s:Value></s:Code><s:Reason><s:Text>r</s:Text></s:Reason>", r"lang"),
        # Reason needs at least one Text.
        ("<s:Code><s:Value>s:Sender</s:Value></s:Code><s:Reason/>", r"Text|Reason"),
        # Subcode needs a Value.
        (f"<s:Code><s:Value>s:Sender</s:Value><s:Subcode/></s:Code>{REASON}", r"Value|Subcode"),
        # SOAP 1.1 fault children inside a SOAP 1.2 Fault.
        ("<faultcode>s:Client</faultcode><faultstring>x</faultstring>", r"faultcode"),
        # Detail after Node/Role, not before.
        (f"<s:Code><s:Value>s:Sender</s:Value></s:Code>{REASON}<s:Detail/><s:Node>http://n</s:Node>", r"Node"),
        # Unknown SOAP-namespace child.
        (f"<s:Code><s:Value>s:Sender</s:Value></s:Code>{REASON}<s:Extra/>", r"Extra"),
    ],
    ids=[
        "wsman-code-in-Value",
        "soap11-code",
        "missing-Reason",
        "Reason-before-Code",
        "Text-without-xml-lang",
        "empty-Reason",
        "Subcode-without-Value",
        "soap11-fault-shape",
        "Detail-before-Node",
        "unknown-soap-child",
    ],
)
def test_bad_soap12_fault_shapes_are_rejected(fault, match):
    check_rejected(envelope("", FAULT_TMPL.format(fault)), match)


def test_fault_subcode_with_undeclared_prefix_is_rejected():
    xml = FAULT_ACCESS_DENIED.replace(f' xmlns:wsman="{WSMAN}"'.encode(), b"")
    xml = xml.replace(b"<wsman:FaultDetail>", b'<wsman:FaultDetail xmlns:wsman="' + WSMAN.encode() + b'">')
    check_rejected(xml, r"unmapped prefix 'wsman'")


def test_fault_must_be_the_only_body_child():
    body = FAULT_TMPL.format(f"<s:Code><s:Value>s:Sender</s:Value></s:Code>{REASON}")
    check_rejected(envelope("", body + "<wsmid:Identify/>"), r"only child")


@pytest.mark.parametrize(
    "xml, match",
    [
        (f'<s:Envelope xmlns:s="{S}"><s:Header/></s:Envelope>'.encode(), r"Body"),
        (f'<s:Envelope xmlns:s="{S}"><s:Body/><s:Header/></s:Envelope>'.encode(), r"Header"),
        (f'<s:Envelope xmlns:s="{S}"><s:Body/><s:Body/></s:Envelope>'.encode(), r"Body"),
        (f'<s:Envelope xmlns:s="{S}"><s:Body/><x:After xmlns:x="urn:x"/></s:Envelope>'.encode(), r"After"),
        (f'<s:Envelope xmlns:s="{S}"><Header/><s:Body/></s:Envelope>'.encode(), r"Header"),
        (
            b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body/></e:Envelope>',
            r"SOAP 1\.1",
        ),
        (f'<s:Body xmlns:s="{S}"/>'.encode(), r"expected .*Envelope"),
        (
            f'<!DOCTYPE s:Envelope []><s:Envelope xmlns:s="{S}"><s:Body/></s:Envelope>'.encode(),
            r"DOCTYPE",
        ),
        (
            f'<s:Envelope xmlns:s="{S}"><s:Body><?pi x?></s:Body></s:Envelope>'.encode(),
            r"processing instruction",
        ),
        (b"<s:Envelope", r"well-formed"),
    ],
    ids=[
        "missing-Body",
        "Body-before-Header",
        "two-Bodies",
        "element-after-Body",
        "unqualified-Header",
        "soap11-envelope",
        "not-an-Envelope",
        "doctype",
        "processing-instruction",
        "not-well-formed",
    ],
)
def test_bad_envelopes_are_rejected(xml, match):
    check_rejected(xml, match)


@pytest.mark.parametrize(
    "header, body",
    [
        ("", "junk"),
        ("junk", ""),
        ("<wsse:Security>junk</wsse:Security>", ""),
        ("", "<wsmid:Identify>junk</wsmid:Identify>"),
        ("", FAULT_TMPL.format(f"<s:Code><s:Value>s:Sender</s:Value></s:Code>{REASON}<s:Detail>junk</s:Detail>")),
        ("", "<wsen:Pull>junk<wsen:EnumerationContext>c</wsen:EnumerationContext></wsen:Pull>"),
    ],
    ids=["Body", "Header", "Security", "Identify", "Detail", "Pull"],
)
def test_text_in_element_only_content_is_rejected(header, body):
    # xmlschema alone accepts text in a content model that is a single
    # wildcard (s:Body, s:Header, ...); schema_check closes that gap.
    check_rejected(envelope(header, body), r"character data")


def test_unqualified_header_block_is_rejected():
    check_rejected(envelope("<Action>urn:x</Action>", ""), r"not namespace qualified")


def test_unqualified_body_child_is_rejected():
    check_rejected(envelope("", "<Identify/>"), r"not namespace qualified")


def test_header_element_of_soap_namespace_must_be_a_header_block():
    check_rejected(envelope("<s:Body/>", ""), r"not a SOAP 1\.2 header block")
    check_rejected(envelope("", '<s:NotUnderstood qname="s:Envelope"/>'), r"not allowed as a child of s:Body")


def test_mustunderstand_must_be_boolean():
    check_rejected(WSMANCLI_GET.replace(b's:mustUnderstand="true">153600', b's:mustUnderstand="yes">153600'), r"mustUnderstand|boolean")
    check_rejected(WINRM_GET.replace(b'mustUnderstand="true">153600', b'mustUnderstand="yes">153600'), r"mustUnderstand|boolean")


# ============================================================== rejected: unknown elements

@pytest.mark.parametrize(
    "header, body, match",
    [
        # Unknown element of the WS-Addressing namespace as a header block.
        ("<wsa:ActionX>urn:x</wsa:ActionX>", "", r"ActionX"),
        # ... nested in an EPR (the EPR extension wildcard is ##other).
        (f"<wsa:ReplyTo><wsa:Address>{ANON}</wsa:Address><wsa:Bogus/></wsa:ReplyTo>", "", r"Bogus"),
        # ... inside ReferenceParameters (lax ##any): must still be declared.
        (
            f"<wsa:ReplyTo><wsa:Address>{ANON}</wsa:Address>"
            "<wsa:ReferenceParameters><wsa:Bogus/></wsa:ReferenceParameters></wsa:ReplyTo>",
            "",
            r"Bogus",
        ),
        ("<wsman:ResourceUri>urn:x</wsman:ResourceUri>", "", r"ResourceUri"),
        ("", "<wsman:Enumerate/>", r"wsman.xsd\}Enumerate"),
        ("", "<wsen:Enumerate><wsman:Frobnicate/></wsen:Enumerate>", r"Frobnicate"),
        # Unknown wsman element nested inside a lax wsman:Filter.
        (
            "",
            '<wsen:Enumerate><wsman:Filter Dialect="urn:d"><wsman:SelectorSett/></wsman:Filter></wsen:Enumerate>',
            r"SelectorSett",
        ),
        ("", "<wsmid:Identity/>", r"Identity"),
        ("", "<wxf:Get/>", r"transfer\}Get"),
        ("", "<wse:Subscription/>", r"Subscription"),
        ("<wsse:Securty/>", "", r"Securty"),
        # Unknown wsu element nested in the lax Security header.
        ("<wsse:Security><wsu:TimeStamp/></wsse:Security>", "", r"TimeStamp"),
        ("", "<kms:NoSuchOperation/>", r"NoSuchOperation"),
        ("<kms:NoSuchHeader/>", "", r"NoSuchHeader"),
        # Unknown KMS element deep inside a foreign (lax) payload.
        ("", '<x:Wrap xmlns:x="urn:example:foreign"><kms:NoSuchThing/></x:Wrap>', r"NoSuchThing"),
    ],
    ids=[
        "wsa-header",
        "wsa-in-EPR",
        "wsa-in-ReferenceParameters",
        "wsman-header-case",
        "wsman-body",
        "wsman-in-Enumerate",
        "wsman-in-Filter",
        "wsmid-body",
        "wxf-body",
        "wse-body",
        "wsse-header",
        "wsu-in-Security",
        "kms-body",
        "kms-header",
        "kms-nested-in-foreign",
    ],
)
def test_unknown_elements_in_our_namespaces_are_rejected(header, body, match):
    check_rejected(envelope(header, body), match)


# ============================================================== rejected: typed WS-Man headers

def _get_with(old: bytes, new: bytes) -> bytes:
    assert old in WSMANCLI_GET, old
    return WSMANCLI_GET.replace(old, new)


@pytest.mark.parametrize(
    "old, new, match",
    [
        (b">153600<", b">big<", r"MaxEnvelopeSize|positiveInteger|153600|big"),
        (b">153600<", b">0<", r"MaxEnvelopeSize|positiveInteger|0"),
        (b">153600<", b">-1<", r"MaxEnvelopeSize|positiveInteger"),
        (b">PT60.000S<", b">60 seconds<", r"OperationTimeout|duration"),
        (b'<wsman:Locale xml:lang="en-US" ', b"<wsman:Locale ", r"lang"),
        (b'xml:lang="en-US"', b'xml:lang="en US!"', r"lang"),
        (b'<wsman:Selector Name="KeyId">', b"<wsman:Selector>", r"Name"),
        (b'<wsman:Selector Name="KeyId">', b'<wsman:Selector Name="Key Id">', r"Name|NCName"),
        (
            b"<wsman:SelectorSet>",
            b"<wsman:SelectorSet><wsman:Option Name='x'/>",
            r"Option",
        ),
        (
            f"<wsa:Address s:mustUnderstand=\"true\">{ANON}</wsa:Address>".encode(),
            b"",
            r"Address|ReplyTo",
        ),
        (b"<wsa:MessageID>", b'<wsa:MessageID Foo="bar">', r"Foo"),
    ],
    ids=[
        "MaxEnvelopeSize-not-a-number",
        "MaxEnvelopeSize-zero",
        "MaxEnvelopeSize-negative",
        "OperationTimeout-not-duration",
        "Locale-without-lang",
        "Locale-bad-lang",
        "Selector-without-Name",
        "Selector-Name-not-NCName",
        "Option-inside-SelectorSet",
        "ReplyTo-without-Address",
        "unqualified-foreign-attribute",
    ],
)
def test_badly_typed_wsman_headers_are_rejected(old, new, match):
    check_rejected(_get_with(old, new), match)


@pytest.mark.parametrize(
    "body, match",
    [
        ("<wsen:Enumerate><wsman:MaxElements>many</wsman:MaxElements></wsen:Enumerate>", r"MaxElements"),
        # an unknown but well-formed mode is schema-valid: the service answers
        # wsman:UnsupportedFeature (tests/e2e/test_wsman_enumeration.py)
        ("<wsen:Enumerate><wsman:EnumerationMode> </wsman:EnumerationMode></wsen:Enumerate>", r"EnumerationMode"),
        ("<wsen:Enumerate><wsman:OptimizeEnumeration>yes</wsman:OptimizeEnumeration></wsen:Enumerate>", r"OptimizeEnumeration|yes|text"),
        ("<wsen:Pull><wsen:MaxElements>20</wsen:MaxElements></wsen:Pull>", r"EnumerationContext|MaxElements"),
        ("<wsen:Pull><wsen:EnumerationContext>c</wsen:EnumerationContext><wsen:MaxTime>PT0S</wsen:MaxTime></wsen:Pull>", r"MaxTime|PT0S"),
        ("<wsen:Pull><wsen:EnumerationContext>c</wsen:EnumerationContext><wsen:MaxElements>0</wsen:MaxElements></wsen:Pull>", r"MaxElements"),
        ("<wsen:PullResponse><wsen:Items/></wsen:PullResponse>", r"Items"),
        ("<wsen:PullResponse><wsen:EndOfSequence/><wsen:Items><x:a xmlns:x='urn:x'/></wsen:Items></wsen:PullResponse>", r"Items"),
        ("<wsen:EnumerateResponse/>", r"EnumerationContext|EnumerateResponse"),
        ("<wsmid:IdentifyResponse><wsmid:ProductVendor>v</wsmid:ProductVendor></wsmid:IdentifyResponse>", r"ProductVendor|ProtocolVersion"),
        ("<wsmid:IdentifyResponse><wsmid:ProtocolVersion>u</wsmid:ProtocolVersion><wsmid:SecurityProfiles/></wsmid:IdentifyResponse>", r"SecurityProfile"),
        ("<wsmid:Identify>text</wsmid:Identify>", r"Identify|text"),
        ("<wse:Subscribe/>", r"Delivery|Subscribe"),
        ("<wse:SubscribeResponse><wse:Expires>PT1H</wse:Expires></wse:SubscribeResponse>", r"SubscriptionManager|Expires"),
        ("<wxf:ResourceCreated/>", r"Address|ResourceCreated"),
        ("<wsman:Events/>", r"Events|Event"),
    ],
    ids=[
        "MaxElements-not-a-number",
        "EnumerationMode-empty",
        "OptimizeEnumeration-not-empty",
        "Pull-without-context",
        "Pull-MaxTime-zero",
        "Pull-MaxElements-zero",
        "PullResponse-empty-Items",
        "PullResponse-order",
        "EnumerateResponse-without-context",
        "IdentifyResponse-without-ProtocolVersion",
        "IdentifyResponse-empty-SecurityProfiles",
        "Identify-with-text",
        "Subscribe-without-Delivery",
        "SubscribeResponse-without-manager",
        "ResourceCreated-without-Address",
        "Events-empty",
    ],
)
def test_bad_ws_bodies_are_rejected(body, match):
    check_rejected(envelope("", body), match)


def test_ws_security_rules_are_enforced():
    ok = MORE_ACCEPTED["ws-security-header"]
    validate_envelope(ok)
    # wsu:Id is an xs:ID: must be unique within the message.
    check_rejected(ok.replace(b'wsu:Id="X509-1"', b'wsu:Id="TS-1"'), r"duplicated xs:ID|TS-1")
    # wsu:Created is an xs:dateTime.
    check_rejected(ok.replace(b"2030-01-01T00:00:00Z", b"yesterday"), r"Created|dateTime|yesterday")


# ============================================================== validate_element

def test_validate_element_on_bare_elements():
    sel = validate_element(
        f'<wsman:SelectorSet xmlns:wsman="{WSMAN}"><wsman:Selector Name="KeyId">k</wsman:Selector></wsman:SelectorSet>'.encode()
    )
    assert sel.tag == f"{{{WSMAN}}}SelectorSet"

    # A sub-element of a parsed envelope; QName values resolve through the
    # in-scope namespaces of the parent document.
    root = etree.fromstring(FAULT_ACCESS_DENIED)
    validate_element(root.find(f".//{{{S}}}Fault"))

    with pytest.raises(AssertionError, match=r"Name"):
        validate_element(f'<wsman:Selector xmlns:wsman="{WSMAN}">k</wsman:Selector>')
    with pytest.raises(AssertionError, match=r"no global element declaration"):
        validate_element(f'<wsa:Bogus xmlns:wsa="{WSA}"/>')
    with pytest.raises(AssertionError, match=r"no global element declaration"):
        validate_element(b'<x:Foreign xmlns:x="urn:example:foreign"/>')
    with pytest.raises(AssertionError, match=r"no global element declaration"):
        # local (non-global) element of the SOAP schema
        validate_element(f'<s:Reason xmlns:s="{S}"><s:Text xml:lang="en">x</s:Text></s:Reason>')


# ============================================================== the schema files themselves

WS_XSDS = sorted(p.name for p in WS_DIR.glob("*.xsd"))
EXPECTED_WS_XSDS = {
    "xml.xsd",
    "soap-envelope.xsd",
    "soap11-envelope.xsd",
    "addressing.xsd",
    "wsman.xsd",
    "wsmid.xsd",
    "transfer.xsd",
    "enumeration.xsd",
    "eventing.xsd",
    "wsu.xsd",
    "wsse.xsd",
    "wsse11.xsd",
    "xmldsig.xsd",
    "exc-c14n.xsd",
    "all.xsd",
}


def test_expected_schema_files_are_shipped():
    assert set(WS_XSDS) >= EXPECTED_WS_XSDS


@pytest.mark.parametrize("name", sorted(EXPECTED_WS_XSDS - {"all.xsd"}))
def test_each_subset_loads_offline_and_standalone(name):
    # allow="sandbox": only files under schemas/ws/ may be read -- no network,
    # no absolute paths, no dependence on ../kms*.xsd.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        schema = xmlschema.XMLSchema10(str(WS_DIR / name), allow="sandbox", defuse="always")
    for s in schema.maps.iter_schemas():
        if s.url and "xmlschema" not in s.url:  # the library's own meta-schemas
            assert s.url.startswith((WS_DIR.as_uri(), "file://" + str(WS_DIR))), s.url
    # libxml2 must agree that it is a valid schema (second opinion).
    etree.XMLSchema(etree.parse(str(WS_DIR / name), etree.XMLParser(no_network=True)))


@pytest.mark.parametrize("name", sorted(EXPECTED_WS_XSDS))
def test_each_schema_documents_what_it_subsets(name):
    text = (WS_DIR / name).read_text(encoding="utf-8")
    head = text[: text.index("<xs:schema")]
    assert "<!--" in head and "kms-ws" in head
    if name != "all.xsd":
        assert "Subsets:" in head
    # Only local, relative schemaLocations.
    for loc in re.findall(r'schemaLocation="([^"]+)"', text):
        assert "://" not in loc and not loc.startswith("/"), loc


def test_all_xsd_imports_every_subset_and_the_kms_messages():
    text = ALL_XSD.read_text(encoding="utf-8")
    locations = set(re.findall(r'schemaLocation="([^"]+)"', text))
    assert EXPECTED_WS_XSDS - {"all.xsd"} <= locations
    assert "../kms-messages.xsd" in locations
    assert not re.search(r"<xs:schema[^>]*targetNamespace", text)


def test_driver_schema_covers_all_namespaces():
    schema = get_schema()
    assert {S, WSA, WSMAN, WSMID, WXF, WSEN, WSE, WSSE, WSU, WSSE11, KMS_NS} <= shipped_namespaces()
    for tag in (
        f"{{{S}}}Envelope",
        f"{{{WSA}}}Action",
        f"{{{WSMAN}}}MaxEnvelopeSize",
        f"{{{WSMID}}}IdentifyResponse",
        f"{{{WXF}}}ResourceCreated",
        f"{{{WSEN}}}PullResponse",
        f"{{{WSE}}}Subscribe",
        f"{{{WSSE}}}Security",
        f"{{{WSU}}}Timestamp",
        f"{{{WSSE11}}}SignatureConfirmation",
    ):
        assert tag in schema.maps.elements, tag
    assert get_schema() is schema  # built once, cached


def test_kms_messages_schema_is_loaded():
    assert (SCHEMAS_DIR / "kms-messages.xsd").exists()
    kms_elements = [t for t in get_schema().maps.elements if t.startswith(f"{{{KMS_NS}}}")]
    assert kms_elements, "kms-messages.xsd present but no KMS global elements loaded"


def test_signed_envelopes_are_validated_down_to_the_signature():


    key = ec.generate_private_key(ec.SECP256R1())
    env = etree.fromstring(envelope("", "<kms:GetServerCapabilities/>"))
    wssecurity.sign(env, wssecurity.SigningKey(key, self_signed(key, "t")),
                    now=utcnow(), ttl_seconds=300,
                    body_prefixes=["kms"])
    ok = etree.tostring(env)
    validate_envelope(ok)
    # ds: is a shipped namespace now: an undeclared ds element is not let through laxly.
    check_rejected(ok.replace(b"</ds:Signature>", b"<ds:Object/></ds:Signature>"), r"Object")
    check_rejected(ok.replace(b"<ds:SignatureValue>", b"<ds:SignatureValue>!!"), r"SignatureValue|base64")


# ============================================================== SOAP 1.1 (soap11-envelope.xsd)

S11 = "http://schemas.xmlsoap.org/soap/envelope/"


def envelope11(header: str, body: str) -> bytes:
    """A SOAP 1.1 envelope (prefix s) with our other prefixes declared on the root."""
    return envelope(header, body).replace(S.encode(), S11.encode(), 1)


FAULT11 = (f'<s:Fault><faultcode xmlns:kms="{KMS_NS}">kms:NotFound</faultcode>'
           "<faultstring>no key</faultstring><detail><kms:KmsFault><kms:ErrorCode>"
           "E_KEY_NOT_FOUND</kms:ErrorCode><kms:RequestId>r1</kms:RequestId></kms:KmsFault>"
           "</detail></s:Fault>")
UPGRADE11 = (f'<upg:Upgrade xmlns:upg="{S}"><upg:SupportedEnvelope xmlns:n="{S}" '
             'qname="n:Envelope"/></upg:Upgrade>')


@pytest.mark.parametrize("xml", [
    envelope11(f'<wsa:Action s:mustUnderstand="1">{KMS_NS}/GetKey</wsa:Action>',
               f"<kms:GetKey><kms:KeyId>{KEY_ID}</kms:KeyId></kms:GetKey>"),
    envelope11("", FAULT11),
    envelope11(UPGRADE11, "<s:Fault><faultcode>s:VersionMismatch</faultcode>"
                          "<faultstring>SOAP 1.2 only</faultstring></s:Fault>"),
], ids=["request", "typed-fault", "version-mismatch-with-upgrade"])
def test_soap11_envelopes_are_accepted_when_asked_for(xml):
    validate_envelope(xml, soap11=True)
    with pytest.raises(AssertionError, match=r"SOAP 1\.1 envelope"):
        validate_envelope(xml)  # a SOAP 1.2 message was expected


@pytest.mark.parametrize("xml, match", [
    (envelope11("", FAULT11.replace("<faultstring>", "<faultactor>urn:x</faultactor>"
                                                     "<faultstring>")), r"faultstring|faultactor"),
    (envelope11("", FAULT11.replace("<faultcode", "<s:faultcode").replace(
        "</faultcode>", "</s:faultcode>")), r"faultcode"),
    (envelope11("", FAULT11 + "<kms:GetServerCapabilities/>"), r"only child"),
    (envelope11(f'<wsa:Action s:mustUnderstand="true">{KMS_NS}/GetKey</wsa:Action>',
                "<kms:GetServerCapabilities/>"), r"mustUnderstand|true"),
    (envelope11("", "<kms:GetServerCapabilities/>").replace(
        b"</s:Envelope>", b'<x:After xmlns:x="urn:x"/></s:Envelope>'), r"follow the Body"),
    (envelope11("", "<kms:NoSuchElement/>"), r"NoSuchElement"),
    (envelope11("<s:Upgrade/>", "<kms:GetServerCapabilities/>"), r"Upgrade"),
], ids=["faultactor-after-faultstring", "qualified-faultcode", "fault-and-more",
        "mustUnderstand-true", "element-after-Body", "unknown-kms-element",
        "soap11-namespace-header-block"])
def test_bad_soap11_envelopes_are_rejected(xml, match):
    with pytest.raises(AssertionError) as info:
        validate_envelope(xml, soap11=True)
    assert re.search(match, str(info.value)), str(info.value)
