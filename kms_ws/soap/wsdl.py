"""Generate wsdl/kms.wsdl from schemas/: document/literal, SOAP 1.2, one operation per
request element of kms-messages.xsd. The schemas are inlined (merged into one xs:schema)
so a client needs nothing but the WSDL. `kms-ws wsdl` writes it; a test keeps the
committed file and the served one identical to what this produces."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from ..service.dispatch import OPERATIONS
from ..xmlns import KMS, action

XS = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
SOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/"
PLACEHOLDER_URL = "http://localhost:5985/wsman"
CLIENT_PLACEHOLDER_URL = "http://localhost:5986/kms-client"


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


def build_wsdl(schema_dir: Path) -> bytes:
    """The KMS server service: every §6 operation of the dispatch table."""
    return _build(schema_dir, list(OPERATIONS), "Kms", (
        "kms-ws: IEEE P1619.3 key management service (SOAP 1.2, WS-Addressing 2004/08). "
        "Authenticate with HTTP Basic or the kms:Credential header (a session credential)."),
        credential_header=True)


def build_client_wsdl(schema_dir: Path) -> bytes:
    """The KMS Client Service a client exposes for server-initiated calls."""
    return _build(schema_dir, list(CLIENT_OPERATIONS), "KmsClient", (
        "kms-ws: the KMS Client Service (IEEE P1619.3 §6.10 GetStatus, §6.11 UpdatePending), "
        "exposed by a KMS client at the NotifyTo address of its WS-Eventing subscription "
        "and called by the KMS server."), credential_header=False)


def _build(schema_dir: Path, ops: list[str], name: str, doc: str,
           credential_header: bool) -> bytes:
    W, S = "{%s}" % WSDL, "{%s}" % SOAP12
    defs = etree.Element(W + "definitions", nsmap={"wsdl": WSDL, "soap12": SOAP12, "xs": XS,
                                                   "kms": KMS},
                         name=f"{name}Service", targetNamespace=KMS)
    etree.SubElement(defs, W + "documentation").text = doc
    types = etree.SubElement(defs, W + "types")
    types.append(_merged_schema(schema_dir))

    def message(name: str, element: str) -> None:
        msg = etree.SubElement(defs, W + "message", name=name)
        etree.SubElement(msg, W + "part", name="parameters", element=f"kms:{element}")

    for op in ops:
        message(f"{op}Input", op)
        message(f"{op}Output", f"{op}Response")
    if credential_header:
        message("CredentialHeader", "Credential")
    message("KmsFault", "KmsFault")

    port_type = etree.SubElement(defs, W + "portType", name=f"{name}PortType")
    for op in ops:
        o = etree.SubElement(port_type, W + "operation", name=op)
        etree.SubElement(o, W + "input", message=f"kms:{op}Input", name=f"{op}Input")
        etree.SubElement(o, W + "output", message=f"kms:{op}Output", name=f"{op}Output")
        etree.SubElement(o, W + "fault", message="kms:KmsFault", name="KmsFault")

    binding = etree.SubElement(defs, W + "binding", name=f"{name}Soap12Binding",
                               type=f"kms:{name}PortType")
    etree.SubElement(binding, S + "binding", style="document",
                     transport="http://schemas.xmlsoap.org/soap/http")
    for op in ops:
        o = etree.SubElement(binding, W + "operation", name=op)
        etree.SubElement(o, S + "operation", soapAction=action(op), soapActionRequired="false",
                         style="document")
        inp = etree.SubElement(o, W + "input", name=f"{op}Input")
        etree.SubElement(inp, S + "body", use="literal")
        if credential_header:
            etree.SubElement(inp, S + "header", message="kms:CredentialHeader",
                             part="parameters", use="literal")
        out = etree.SubElement(o, W + "output", name=f"{op}Output")
        etree.SubElement(out, S + "body", use="literal")
        fault = etree.SubElement(o, W + "fault", name="KmsFault")
        etree.SubElement(fault, S + "fault", name="KmsFault", use="literal")

    service = etree.SubElement(defs, W + "service", name=f"{name}Service")
    port = etree.SubElement(service, W + "port", name=f"{name}Port",
                            binding=f"kms:{name}Soap12Binding")
    etree.SubElement(port, S + "address", location=PLACEHOLDER_URL if credential_header
                     else CLIENT_PLACEHOLDER_URL)
    return etree.tostring(defs, xml_declaration=True, encoding="UTF-8", pretty_print=True)
