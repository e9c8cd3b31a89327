"""Schema checks of SOAP messages as a foreign toolkit sent them, SOAP 1.2 or SOAP 1.1:
the envelope's namespace says which, and schema_check validates the whole envelope against
schemas/ (SOAP 1.1 through schemas/ws/soap11-envelope.xsd)."""

from __future__ import annotations

from lxml import etree

from kms_ws.xmlns import SOAP, SOAP11

from .schema_check import validate_envelope

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                          huge_tree=False)


def soap_version(message: bytes) -> str:
    """'1.1' or '1.2', by the envelope's namespace."""
    tag = etree.fromstring(message, _PARSER).tag
    if tag == f"{{{SOAP}}}Envelope":
        return "1.2"
    if tag == f"{{{SOAP11}}}Envelope":
        return "1.1"
    raise AssertionError(f"not a SOAP envelope: {tag}")


def validate_soap(message: bytes) -> etree._Element:
    """Validate a SOAP 1.2 or SOAP 1.1 message whole; return its root."""
    return validate_envelope(message, soap11=soap_version(message) == "1.1")
