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


def _merged_schema(schema_dir: Path) -> etree._Element:
    parser = etree.XMLParser(remove_blank_text=True, remove_comments=True, resolve_entities=False,
                             no_network=True)
    objects = etree.parse(str(schema_dir / "kms.xsd"), parser).getroot()
    messages = etree.parse(str(schema_dir / "kms-messages.xsd"), parser).getroot()
    for child in messages:
        if isinstance(child.tag, str) and child.tag != f"{{{XS}}}include":
            objects.append(child)
    return objects


def build_wsdl(schema_dir: Path) -> bytes:
    W, S = "{%s}" % WSDL, "{%s}" % SOAP12
    defs = etree.Element(W + "definitions", nsmap={"wsdl": WSDL, "soap12": SOAP12, "xs": XS,
                                                   "kms": KMS},
                         name="KmsService", targetNamespace=KMS)
    etree.SubElement(defs, W + "documentation").text = (
        "kms-ws: IEEE P1619.3 key management service (SOAP 1.2, WS-Addressing 2004/08). "
        "Authenticate with HTTP Basic or the kms:Credential header (a session credential).")
    types = etree.SubElement(defs, W + "types")
    types.append(_merged_schema(schema_dir))

    def message(name: str, element: str) -> None:
        msg = etree.SubElement(defs, W + "message", name=name)
        etree.SubElement(msg, W + "part", name="parameters", element=f"kms:{element}")

    ops = list(OPERATIONS)
    for op in ops:
        message(f"{op}Input", op)
        message(f"{op}Output", f"{op}Response")
    message("CredentialHeader", "Credential")
    message("KmsFault", "KmsFault")

    port_type = etree.SubElement(defs, W + "portType", name="KmsPortType")
    for op in ops:
        o = etree.SubElement(port_type, W + "operation", name=op)
        etree.SubElement(o, W + "input", message=f"kms:{op}Input", name=f"{op}Input")
        etree.SubElement(o, W + "output", message=f"kms:{op}Output", name=f"{op}Output")
        etree.SubElement(o, W + "fault", message="kms:KmsFault", name="KmsFault")

    binding = etree.SubElement(defs, W + "binding", name="KmsSoap12Binding", type="kms:KmsPortType")
    etree.SubElement(binding, S + "binding", style="document",
                     transport="http://schemas.xmlsoap.org/soap/http")
    for op in ops:
        o = etree.SubElement(binding, W + "operation", name=op)
        etree.SubElement(o, S + "operation", soapAction=action(op), soapActionRequired="false",
                         style="document")
        inp = etree.SubElement(o, W + "input", name=f"{op}Input")
        etree.SubElement(inp, S + "body", use="literal")
        etree.SubElement(inp, S + "header", message="kms:CredentialHeader", part="parameters",
                         use="literal")
        out = etree.SubElement(o, W + "output", name=f"{op}Output")
        etree.SubElement(out, S + "body", use="literal")
        fault = etree.SubElement(o, W + "fault", name="KmsFault")
        etree.SubElement(fault, S + "fault", name="KmsFault", use="literal")

    service = etree.SubElement(defs, W + "service", name="KmsService")
    port = etree.SubElement(service, W + "port", name="KmsPort", binding="kms:KmsSoap12Binding")
    etree.SubElement(port, S + "address", location=PLACEHOLDER_URL)
    return etree.tostring(defs, xml_declaration=True, encoding="UTF-8", pretty_print=True)
