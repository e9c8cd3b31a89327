"""Generate wsdl/kms.wsdl from schemas/: document/literal wrapped, one operation per request
element of kms-messages.xsd, a SOAP 1.2 and a SOAP 1.1 binding of the same port type. The
schemas are inlined (merged into one xs:schema) so a client needs nothing but the WSDL.
`kms-ws wsdl` writes it; a test keeps the committed file and the served one identical to
what this produces.

Written for WSDL-driven generators (WS-I Basic Profile 1.1/1.2 as the rule): every
operation has a soapAction (required: gSOAP ignores an optional one), every portType
input, output and fault an explicit WS-Addressing Metadata `wsam:Action` (what
WS-Addressing-aware stacks send and expect), part names are unique within each message.
`action_aliases` maps the other actions a request for an operation may carry — those
toolkits derive from an older copy of this WSDL, which had no wsam:Action — to the
response action that goes with each."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from ..service.dispatch import OPERATIONS
from ..xmlns import KMS, WSMAN_FAULT_ACTION, action

XS = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
SOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/"
SOAP11 = "http://schemas.xmlsoap.org/wsdl/soap/"
WSAM = "http://www.w3.org/2007/05/addressing/metadata"
HTTP_TRANSPORT = "http://schemas.xmlsoap.org/soap/http"
PLACEHOLDER_URL = "http://localhost:5985/wsman"
CLIENT_PLACEHOLDER_URL = "http://localhost:5986/kms-client"
FAULT_ACTION = WSMAN_FAULT_ACTION  # what kms-ws sends with a fault of a §6 operation
SERVICE = "Kms"  # KmsService, KmsPortType, KmsSoap12Binding, KmsPort, ...
PORT_TYPE = SERVICE + "PortType"


def _merged_schema(schema_dir: Path) -> etree._Element:
    parser = etree.XMLParser(remove_blank_text=True, remove_comments=True, resolve_entities=False,
                             no_network=True)
    objects = etree.parse(str(schema_dir / "kms.xsd"), parser).getroot()
    messages = etree.parse(str(schema_dir / "kms-messages.xsd"), parser).getroot()
    for child in messages:
        if isinstance(child.tag, str) and child.tag != f"{{{XS}}}include":
            objects.append(child)
    return objects


CLIENT_OPERATIONS = ("UpdatePending", "GetStatus")  # the KMS Client Service (§6.10, §6.11)


def action_aliases(op: str) -> dict[str, str]:
    """{request action: response action} for `op`: ours (the soapAction and wsam:Action),
    then the defaults toolkits derive when a WSDL gives no wsam:Action — WS-Addressing 1.0
    Metadata §4.4.4 ([target namespace][delimiter][port type][delimiter][input or output
    name], the delimiter ':' for a URN target namespace) and the same with '/' (gSOAP's
    wsdl2h: urn:kms-ws:p1619.3:1/KmsPortType/GetRandomBytesInput)."""
    aliases = {action(op): action(op + "Response")}
    for d in (":", "/"):
        aliases[f"{KMS}{d}{PORT_TYPE}{d}{op}Input"] = f"{KMS}{d}{PORT_TYPE}{d}{op}Output"
    return aliases


def build_wsdl(schema_dir: Path) -> bytes:
    """The KMS server service: every §6 operation of the dispatch table, in SOAP 1.2 (port
    KmsPort) and SOAP 1.1 (port KmsSoap11Port) at the same address."""
    return _build(schema_dir, list(OPERATIONS), SERVICE, (
        "kms-ws: IEEE P1619.3 key management service, document/literal, WS-Addressing "
        "2004/08. Port KmsPort speaks SOAP 1.2, port KmsSoap11Port SOAP 1.1, at the same "
        "address. Authenticate with HTTP Basic, the kms:Credential header (a session "
        "credential from Authenticate) or a WS-Security signature."),
        credential_header=True, versions=(SOAP12, SOAP11))


def build_client_wsdl(schema_dir: Path) -> bytes:
    """The KMS Client Service a client exposes for server-initiated calls (SOAP 1.2)."""
    return _build(schema_dir, list(CLIENT_OPERATIONS), "KmsClient", (
        "kms-ws: the KMS Client Service (IEEE P1619.3 §6.10 GetStatus, §6.11 UpdatePending), "
        "exposed by a KMS client at the NotifyTo address of its WS-Eventing subscription "
        "and called by the KMS server (SOAP 1.2)."), credential_header=False,
        versions=(SOAP12,))


_PORTS = {SOAP12: ("Soap12Binding", "Port"), SOAP11: ("Soap11Binding", "Soap11Port")}


def _build(schema_dir: Path, ops: list[str], name: str, doc: str, credential_header: bool,
           versions: tuple[str, ...]) -> bytes:
    W, A = f"{{{WSDL}}}", f"{{{WSAM}}}"
    nsmap = {"wsdl": WSDL, "soap12": SOAP12, "soap": SOAP11, "wsam": WSAM, "xs": XS,
             "kms": KMS}
    defs = etree.Element(W + "definitions", nsmap={k: v for k, v in nsmap.items()
                                                   if k != "soap" or SOAP11 in versions},
                         name=f"{name}Service", targetNamespace=KMS)
    etree.SubElement(defs, W + "documentation").text = doc
    types = etree.SubElement(defs, W + "types")
    types.append(_merged_schema(schema_dir))

    def message(name: str, part: str, element: str) -> None:
        msg = etree.SubElement(defs, W + "message", name=name)
        etree.SubElement(msg, W + "part", name=part, element=f"kms:{element}")

    for op in ops:
        message(f"{op}Input", "parameters", op)
        message(f"{op}Output", "parameters", f"{op}Response")
    if credential_header:
        message("CredentialHeader", "CredentialHeader", "Credential")
    message("KmsFault", "fault", "KmsFault")

    port_type = etree.SubElement(defs, W + "portType", name=f"{name}PortType")
    for op in ops:
        o = etree.SubElement(port_type, W + "operation", name=op)
        etree.SubElement(o, W + "input", {A + "Action": action(op)},
                         message=f"kms:{op}Input", name=f"{op}Input")
        etree.SubElement(o, W + "output", {A + "Action": action(op + "Response")},
                         message=f"kms:{op}Output", name=f"{op}Output")
        etree.SubElement(o, W + "fault", {A + "Action": FAULT_ACTION},
                         message="kms:KmsFault", name="KmsFault")

    for version in versions:
        _binding(defs, version, name, ops, credential_header)

    service = etree.SubElement(defs, W + "service", name=f"{name}Service")
    for version in versions:
        binding, port_name = _PORTS[version]
        port = etree.SubElement(service, W + "port", name=name + port_name,
                                binding=f"kms:{name}{binding}")
        etree.SubElement(port, f"{{{version}}}address",
                         location=PLACEHOLDER_URL if credential_header
                         else CLIENT_PLACEHOLDER_URL)
    return etree.tostring(defs, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _binding(defs: etree._Element, version: str, name: str, ops: list[str],
             credential_header: bool) -> None:
    W, S = f"{{{WSDL}}}", f"{{{version}}}"
    binding = etree.SubElement(defs, W + "binding", name=name + _PORTS[version][0],
                               type=f"kms:{name}PortType")
    etree.SubElement(binding, S + "binding", style="document", transport=HTTP_TRANSPORT)
    for op in ops:
        o = etree.SubElement(binding, W + "operation", name=op)
        etree.SubElement(o, S + "operation", soapAction=action(op), style="document")
        inp = etree.SubElement(o, W + "input", name=f"{op}Input")
        etree.SubElement(inp, S + "body", use="literal")
        if credential_header:
            etree.SubElement(inp, S + "header", message="kms:CredentialHeader",
                             part="CredentialHeader", use="literal")
        out = etree.SubElement(o, W + "output", name=f"{op}Output")
        etree.SubElement(out, S + "body", use="literal")
        fault = etree.SubElement(o, W + "fault", name="KmsFault")
        etree.SubElement(fault, S + "fault", name="KmsFault", use="literal")
