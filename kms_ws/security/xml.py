"""The one XML parser. Hardened, and applied before any authentication:
byte size, no DTD or entity, bounded depth and element count."""

from __future__ import annotations

from lxml import etree

from ..domain.errors import EncodingLimit, SchemaValidationError
from .settings import SecuritySettings

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                          dtd_validation=False, huge_tree=False, remove_pis=True,
                          remove_comments=False, collect_ids=False)


def parse(data: bytes, settings: SecuritySettings) -> etree._Element:
    if len(data) > settings.max_message_bytes:
        raise EncodingLimit(f"message of {len(data)} bytes exceeds the limit of "
                            f"{settings.max_message_bytes} bytes")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise SchemaValidationError("DTDs and entity declarations are not accepted")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise SchemaValidationError(f"the message is not well-formed XML: {exc.msg}") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise SchemaValidationError("DTDs and entity declarations are not accepted")
    _check_shape(root, settings)
    return root


def _check_shape(root: etree._Element, settings: SecuritySettings) -> None:
    count = depth = 0
    for event, el in etree.iterwalk(root, events=("start", "end")):
        if event == "end":
            depth -= 1
            continue
        depth += 1
        count += 1
        if depth > settings.max_xml_depth:
            raise EncodingLimit(f"message nesting exceeds {settings.max_xml_depth} levels")
        if count > settings.max_xml_elements:
            raise EncodingLimit(f"message has more than {settings.max_xml_elements} elements")
        if isinstance(el, etree._Entity):
            raise SchemaValidationError("entity references are not accepted")
