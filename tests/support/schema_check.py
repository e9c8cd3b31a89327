"""Test-side validator for whole SOAP 1.2 (or, asked for, SOAP 1.1) envelopes and bare
payload elements.

One schema, ``schemas/ws/all.xsd``, is built once (lazily, module level) and
imports every WS-* subset shipped under ``schemas/ws/`` plus the KMS message
schema ``schemas/kms-messages.xsd``.  The SOAP Header/Body (and the WS-*
extension points) are *lax* wildcards, which silently accept elements that
have no global declaration; this module closes that hole: any element whose
namespace is one we ship a schema for must be declared, wherever a wildcard
let it in.

Usage::

    from tests.support.schema_check import validate_envelope, validate_element

    root = validate_envelope(response.content)   # -> lxml element
    validate_element(root.find(".//{urn:kms-ws:p1619.3:1}Key"))

Failures raise ``AssertionError`` with the xmlschema reason(s) and paths.
"""

from __future__ import annotations

import threading
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import xmlschema
from lxml import etree
from xmlschema.exceptions import XMLSchemaWarning
from xmlschema.validators import XsdAnyElement

__all__ = [
    "SCHEMAS_DIR",
    "ALL_XSD",
    "KMS_NS",
    "SOAP_NS",
    "get_schema",
    "shipped_namespaces",
    "validate_envelope",
    "validate_element",
]

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"
ALL_XSD = SCHEMAS_DIR / "ws" / "all.xsd"
KMS_MESSAGES_XSD = SCHEMAS_DIR / "kms-messages.xsd"

KMS_NS = "urn:kms-ws:p1619.3:1"
SOAP_NS = "http://www.w3.org/2003/05/soap-envelope"
SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"

_ENVELOPE = f"{{{SOAP_NS}}}Envelope"
# SOAP-namespace elements allowed as header blocks (SOAP 1.2 Part 1; SOAP 1.1 has none of
# its own: its schema keeps its namespace out of the Header).
_SOAP_HEADER_BLOCKS = {f"{{{SOAP_NS}}}NotUnderstood", f"{{{SOAP_NS}}}Upgrade"}

_lock = threading.Lock()
_schema: xmlschema.XMLSchema10 | None = None
_shipped: frozenset[str] = frozenset()

XmlInput = bytes | bytearray | str | etree._Element | etree._ElementTree | ET.Element


# --------------------------------------------------------------------------- schema


def _url_to_path(url: str | None) -> Path | None:
    if not url:
        return None
    parsed = urlparse(url)
    if parsed.scheme not in ("", "file"):
        return None
    return Path(unquote(parsed.path)).resolve()


def _build() -> tuple[xmlschema.XMLSchema10, frozenset[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # allow="local": never fetch anything over the network (all imports are
        # local relative files); defuse untrusted XML always.
        # use_fallback=False: do not let xmlschema lazily load its bundled
        # schemas (xmldsig, xenc, ...) for namespaces we do not ship when a lax
        # wildcard meets them -- those stay laxly skipped, deterministically.
        schema = xmlschema.XMLSchema10(
            str(ALL_XSD), allow="local", defuse="always", use_fallback=False
        )

    problems = []
    for w in caught:
        if not issubclass(w.category, XMLSchemaWarning):
            continue
        msg = str(w.message)
        # Tolerated only while the KMS schema has not been written yet: its
        # namespace still counts as "shipped" below, so any KMS element fails.
        if (
            issubclass(w.category, xmlschema.XMLSchemaImportWarning)
            and "kms-messages.xsd" in msg
            and not KMS_MESSAGES_XSD.exists()
        ):
            continue
        problems.append(f"{w.category.__name__}: {msg}")
    if problems:
        raise RuntimeError(
            f"{ALL_XSD} did not load cleanly:\n  " + "\n  ".join(problems)
        )

    root = SCHEMAS_DIR.resolve()
    shipped = {KMS_NS}
    for s in schema.maps.iter_schemas():
        path = _url_to_path(s.url)
        if path is not None and path.is_relative_to(root) and s.target_namespace:
            shipped.add(s.target_namespace)
    return schema, frozenset(shipped)


def get_schema() -> xmlschema.XMLSchema10:
    """The cached ``schemas/ws/all.xsd`` schema (built on first use)."""
    global _schema, _shipped
    if _schema is None:
        with _lock:
            if _schema is None:
                _schema, _shipped = _build()
    return _schema


def shipped_namespaces() -> frozenset[str]:
    """Namespaces we ship a schema for (always including the KMS namespace)."""
    get_schema()
    return _shipped


# --------------------------------------------------------------------------- helpers


def _ns(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _to_lxml(xml: Any) -> etree._Element:
    if isinstance(xml, etree._ElementTree):
        return xml.getroot()
    if isinstance(xml, etree._Element):
        return xml
    if isinstance(xml, ET.Element):
        xml = ET.tostring(xml)
    if isinstance(xml, str):
        xml = xml.encode("utf-8")
    if isinstance(xml, (bytes, bytearray)):
        parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
        )
        try:
            return etree.fromstring(bytes(xml), parser)
        except etree.XMLSyntaxError as exc:
            raise AssertionError(f"not well-formed XML: {exc}") from exc
    raise TypeError(f"expected XML bytes/str or an element, got {type(xml).__name__}")


def _has_text(elem: Any) -> bool:
    if elem.text and elem.text.strip():
        return True
    return any(child.tail and child.tail.strip() for child in elem)


def _extra_checks(elem: Any, xsd_element: Any) -> None:
    """xmlschema extra_validator, called for every validated element.

    1. An element that reached the validator only through a lax wildcard
       without a global declaration (xmlschema then uses a synthetic anyType
       element whose parent is the wildcard) must not be in one of our
       namespaces.
    2. xmlschema deliberately does not flag character data in element-only
       content whose model is a single wildcard (it treats it like an empty
       complexType): e.g. text directly inside s:Body, s:Header, s:Detail,
       wsmid:Identify, wsse:Security.  XSD 1.0 forbids it; reject it here.
    """
    xsd_type = xsd_element.type
    content = getattr(xsd_type, "content", None)
    if (
        xsd_type.is_complex()
        and not xsd_type.mixed
        and not xsd_type.has_simple_content()
        # other element-only models are checked by xmlschema itself
        and len(content) == 1
        and isinstance(content[0], XsdAnyElement)
        and _has_text(elem)
    ):
        raise xmlschema.XMLSchemaValidationError(
            xsd_element,
            elem,
            reason=f"character data not allowed in element-only content of {elem.tag!r}",
        )
    if isinstance(xsd_element.parent, XsdAnyElement) and _ns(elem.tag) in _shipped:
        raise xmlschema.XMLSchemaValidationError(
            xsd_element,
            elem,
            reason=(
                f"element {elem.tag!r} has no global declaration in the schema "
                f"shipped for namespace {_ns(elem.tag)!r} (lax wildcard would "
                f"otherwise skip it)"
            ),
        )


def _run_schema(root: etree._Element) -> None:
    schema = get_schema()
    if root.getparent() is not None:
        # xmlschema does not see namespace declarations inherited from the
        # ancestors of a sub-element (needed for QName values such as
        # s:Value); lxml serializes a sub-element with all in-scope ones.
        root = etree.fromstring(etree.tostring(root))
    errors = list(schema.iter_errors(root, extra_validator=_extra_checks))
    if not errors:
        return
    lines = []
    for err in errors:
        lines.append(f"- {err.reason} (at {err.path})")
    raise AssertionError(
        "XML Schema validation failed against schemas/ws/all.xsd:\n"
        + "\n".join(lines)
        + "\n\nFirst error in full:\n"
        + str(errors[0])
    )


def _children(elem: etree._Element) -> list[etree._Element]:
    # Skip comments/PIs: their .tag is not a string.
    return [c for c in elem if isinstance(c.tag, str)]


def _check_declared(child: etree._Element, where: str) -> None:
    ns = _ns(child.tag)
    if not ns:
        raise AssertionError(
            f"{where} child {child.tag!r} is not namespace qualified "
            f"(SOAP 1.2 Part 1, 5.2.1 / 5.3.1)"
        )
    if ns in _shipped and child.tag not in get_schema().maps.elements:
        hint = ""
        if ns == KMS_NS and not KMS_MESSAGES_XSD.exists():
            hint = f" ({KMS_MESSAGES_XSD} does not exist yet)"
        raise AssertionError(
            f"{where} child {child.tag!r} is in namespace {ns!r}, for which we ship "
            f"a schema, but it has no global element declaration{hint}"
        )


# --------------------------------------------------------------------------- API


def validate_envelope(xml: XmlInput, *, soap11: bool = False) -> etree._Element:
    """Validate a complete SOAP 1.2 envelope (soap11: a SOAP 1.1 one); return its lxml
    root element.

    Checks, in addition to XML Schema validation against schemas/ws/all.xsd:
      * the root is a SOAP 1.2 (1.1) ``Envelope``; no DOCTYPE, no processing
        instructions (SOAP 1.2 Part 1, 5; WS-I Basic Profile R1008, R1009);
      * every header block and every Body child is namespace qualified and, if
        its namespace is one we ship, globally declared; SOAP-namespace
        children are only NotUnderstood/Upgrade (Header) and Fault (Body);
      * nothing follows the Body (SOAP 1.2 Part 1, 5.1; Basic Profile R1011);
      * a Fault is the only child of the Body (Part 1, 5.4);
      * no element of a shipped namespace anywhere slipped through a lax
        wildcard undeclared.
    """
    root = _to_lxml(xml)
    get_schema()
    ns = SOAP11_NS if soap11 else SOAP_NS
    envelope = f"{{{ns}}}Envelope"

    if root.tag != envelope:
        for version, other in (("SOAP 1.1", SOAP11_NS), ("SOAP 1.2", SOAP_NS)):
            if root.tag == f"{{{other}}}Envelope":
                raise AssertionError(f"{version} envelope; expected {envelope}")
        raise AssertionError(f"root element is {root.tag!r}, expected {envelope!r}")

    if root.getparent() is None:
        tree = root.getroottree()
        if tree.docinfo.doctype:
            raise AssertionError("SOAP 1.2 messages must not contain a DOCTYPE")
        sibling = root.getprevious()
        while sibling is not None:
            if isinstance(sibling, etree._ProcessingInstruction):
                raise AssertionError("SOAP 1.2 messages must not contain processing instructions")
            sibling = sibling.getprevious()
    for pi in root.iter(etree.ProcessingInstruction):
        raise AssertionError(f"SOAP 1.2 messages must not contain processing instructions: {pi}")

    _run_schema(root)

    # The schema accepted the shape Envelope(Header?, Body) (SOAP 1.1: Body, ##other*).
    header = root.find(f"{{{ns}}}Header")
    body = root.find(f"{{{ns}}}Body")
    assert body is not None  # guaranteed by the schema
    if _children(root)[-1] is not body:
        raise AssertionError("nothing may follow the Body (Basic Profile R1011)")
    fault = f"{{{ns}}}Fault"

    if header is not None:
        for block in _children(header):
            _check_declared(block, "s:Header")
            if _ns(block.tag) == SOAP_NS and block.tag not in _SOAP_HEADER_BLOCKS:
                raise AssertionError(f"{block.tag!r} is not a SOAP 1.2 header block")

    body_children = _children(body)
    for child in body_children:
        _check_declared(child, "s:Body")
        if _ns(child.tag) == ns and child.tag != fault:
            raise AssertionError(f"{child.tag!r} is not allowed as a child of s:Body")
    if any(c.tag == fault for c in body_children) and len(body_children) != 1:
        raise AssertionError(
            "s:Fault must be the only child element of s:Body (SOAP 1.2 Part 1, 5.4); "
            f"found {[c.tag for c in body_children]}"
        )
    return root


def validate_element(xml: XmlInput) -> etree._Element:
    """Validate a bare element (e.g. a KMS payload or a wsman:SelectorSet)
    against its global declaration; return it as an lxml element."""
    elem = _to_lxml(xml)
    schema = get_schema()
    ns = _ns(elem.tag)
    if elem.tag not in schema.maps.elements:
        where = "shipped" if ns in _shipped else "not shipped"
        raise AssertionError(
            f"{elem.tag!r} has no global element declaration (namespace {ns!r} is {where})"
        )
    _run_schema(elem)
    return elem
