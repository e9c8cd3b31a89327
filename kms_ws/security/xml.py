"""The one XML parser. Hardened, and applied before any authentication:
byte size, no DTD or entity, bounded depth and element count."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from lxml import etree

from ..domain.errors import EncodingLimit, SchemaValidationError
from .settings import SecuritySettings

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                          dtd_validation=False, huge_tree=False, remove_pis=True,
                          remove_comments=False, collect_ids=False)


def parse(data: bytes, settings: SecuritySettings) -> etree._Element:
    root = _parse(data, settings)
    tree = root.getroottree()
    doctype = tree.docinfo.doctype  # type: ignore[attr-defined]  # not in lxml-stubs 0.5
    if doctype or tree.docinfo.internalDTD is not None:
        raise SchemaValidationError("DTDs and entity declarations are not accepted")
    check_shape(root, settings)
    return root


def parse_canonical(data: bytes, settings: SecuritySettings, limit: int) -> etree._Element:
    """Exclusive c14n of elements of a document whose shape `check_shape` passed (the
    signed parts `wssecurity.verify` hands on, side by side in one wrapping element),
    parsed back; at most `limit` bytes. The DTD checks and the hardened parser are those
    of `parse`; the shape holds by construction: the elements' subtrees have no more
    elements and (under a wrapper one level deep) no more depth than the checked
    document, and canonical XML holds no DTD (so no entity reference can parse)."""
    return _parse(data, settings, limit)


def _parse(data: bytes, settings: SecuritySettings, limit: int | None = None
           ) -> etree._Element:
    limit = settings.max_message_bytes if limit is None else limit
    if len(data) > limit:
        raise EncodingLimit(f"message of {len(data)} bytes exceeds the limit of "
                            f"{limit} bytes")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise SchemaValidationError("DTDs and entity declarations are not accepted")
    try:
        return etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise SchemaValidationError(f"the message is not well-formed XML: {exc.msg}") from None


def check_shape(root: etree._Element, settings: SecuritySettings) -> None:
    """Depth and element-count limits, and no entity reference, each in one native pass of
    libxml2 (a Python walk of every node cost more than the parse itself). Depth: is there
    an element one level below the limit (the root is level 1)."""
    if _deeper_than(settings.max_xml_depth)(root):
        raise EncodingLimit(f"message nesting exceeds {settings.max_xml_depth} levels")
    if cast(float, _COUNT_ELEMENTS(root)) > settings.max_xml_elements:  # count(): a number
        raise EncodingLimit(f"message has more than {settings.max_xml_elements} elements")
    if next(root.iter(etree.Entity), None) is not None:
        raise SchemaValidationError("entity references are not accepted")


_COUNT_ELEMENTS = etree.XPath("count(//*)")


@functools.lru_cache(maxsize=8)
def _deeper_than(depth: int) -> etree.XPath:
    return etree.XPath("boolean(" + "/*" * (depth + 1) + ")")


# ---- reading what was parsed ----------------------------------------------------------------

def text_of(el: etree._Element) -> str:
    """The whole character content of a simple-typed element, as a schema validator and an
    exclusive c14n see it. lxml's `el.text` stops at the first comment inside the element
    (`<NumberOfBytes><!---->16</NumberOfBytes>` has text None): the rest is the comment's
    tail. CDATA sections and character references are already plain text. Every reader
    of an element's value goes through here, never through `.text`."""
    if len(el) == 0:
        return el.text or ""
    return "".join([el.text or "", *(c.tail or "" for c in el)])


def child_text(el: etree._Element, tag: str) -> str | None:
    """text_of the first child `tag` ("{ns}name"), None when there is none (findtext)."""
    child = el.find(tag)
    return None if child is None else text_of(child)


# ---- our own XML text ----------------------------------------------------------------------

def parse_own(text: str) -> etree._Element:
    """XML text this server wrote (never input, so without the input limits): still no
    DTD, entities or network, and lxml's default size limits."""
    return etree.fromstring(text, _PARSER)


@dataclass(frozen=True)
class Spliced:
    """XML text we wrote (never input), placed as the content of the element whose text is
    `marker` when the envelope is serialised and when its signature digests are computed.
    `text` must be in exclusive-c14n form in its context (every element declaring the
    prefixes it uses that no ancestor inside the Body declares; c14n escaping), so the
    signed bytes and the sent bytes are the same and a verifier's c14n reproduces them."""

    marker: str  # a unique token (ASCII letters and digits): the element's text until then
    text: bytes  # UTF-8

    @classmethod
    def new(cls, text: str) -> Spliced:
        return cls("kmsSpliced" + uuid.uuid4().hex, text.encode("utf-8"))


def splice(data: bytes, parts: Sequence[Spliced]) -> bytes:
    """`data` (a serialisation or c14n of a tree holding the markers) with each marker
    replaced by its text; each marker must occur exactly once."""
    for part in parts:
        before, found, after = data.partition(part.marker.encode("ascii"))
        if not found or part.marker.encode("ascii") in after:
            raise ValueError("a spliced marker must occur exactly once")
        data = before + part.text + after
    return data
