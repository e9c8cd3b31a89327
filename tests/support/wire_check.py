"""Schema checks of SOAP messages as a foreign toolkit sent them, SOAP 1.2 or SOAP 1.1.

SOAP 1.2 envelopes are validated whole (schema_check.validate_envelope). For a SOAP 1.1
envelope the Envelope/Header/Body/Fault frame is checked here (SOAP 1.1 §4: an optional
Header first, then one Body; a Fault alone in the Body, with faultcode and faultstring), and
every header block and Body child (and fault detail entry) whose namespace schemas/ ships
is validated against its global declaration there."""

from __future__ import annotations

from lxml import etree

from kms_ws.xmlns import SOAP, SOAP11

from .schema_check import shipped_namespaces, validate_element, validate_envelope

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                          huge_tree=False)
_FAULT11_PARTS = ("faultcode", "faultstring", "faultactor", "detail")


def soap_version(message: bytes) -> str:
    """'1.1' or '1.2', by the envelope's namespace."""
    tag = etree.fromstring(message, _PARSER).tag
    if tag == f"{{{SOAP}}}Envelope":
        return "1.2"
    if tag == f"{{{SOAP11}}}Envelope":
        return "1.1"
    raise AssertionError(f"not a SOAP envelope: {tag}")


def validate_soap(message: bytes) -> etree._Element:
    """Validate a SOAP 1.2 or SOAP 1.1 message; return its root."""
    if soap_version(message) == "1.2":
        return validate_envelope(message)
    return _validate_soap11(etree.fromstring(message, _PARSER))


def _elements(parent: etree._Element) -> list[etree._Element]:
    return [c for c in parent if isinstance(c.tag, str)]


def _ns(el: etree._Element) -> str:
    return etree.QName(el).namespace or ""


def _entry(el: etree._Element, where: str) -> None:
    if not _ns(el):
        raise AssertionError(f"{where} entry {el.tag!r} is not namespace qualified")
    if _ns(el) in shipped_namespaces():
        validate_element(el)


def _validate_soap11(root: etree._Element) -> etree._Element:
    if root.getroottree().docinfo.doctype:
        raise AssertionError("a SOAP message must not contain a DOCTYPE")
    children = _elements(root)
    header = children[0] if children and children[0].tag == f"{{{SOAP11}}}Header" else None
    rest = children[1:] if header is not None else children
    if len(rest) != 1 or rest[0].tag != f"{{{SOAP11}}}Body":
        raise AssertionError("a SOAP 1.1 Envelope holds an optional Header and then one Body, "
                             f"found {[c.tag for c in children]}")
    for block in _elements(header) if header is not None else ():
        _entry(block, "Header")
    body = _elements(rest[0])
    faults = [c for c in body if c.tag == f"{{{SOAP11}}}Fault"]
    if not faults:
        for child in body:
            _entry(child, "Body")
        return root
    if len(body) != 1:
        raise AssertionError("a SOAP 1.1 Fault is the only entry of its Body")
    parts = _elements(faults[0])
    names = [p.tag for p in parts]
    if names[:2] != ["faultcode", "faultstring"] or any(n not in _FAULT11_PARTS for n in names) \
            or len(set(names)) != len(names):
        raise AssertionError(f"a SOAP 1.1 Fault is faultcode, faultstring, faultactor?, "
                             f"detail?; found {names}")
    # a QName: one of SOAP 1.1's codes, or one of the fault's own authority (Basic Profile
    # R1004)
    code = parts[0].text or ""
    prefix, _, local = code.strip().rpartition(":")
    namespace = parts[0].nsmap.get(prefix or None)
    if not namespace or not local or (namespace == SOAP11 and local.split(".")[0] not in (
            "VersionMismatch", "MustUnderstand", "Client", "Server")):
        raise AssertionError(f"faultcode {code!r} is not a SOAP 1.1 fault code")
    for part in parts:
        if part.tag == "detail":
            for entry in _elements(part):
                _entry(entry, "detail")
    return root
