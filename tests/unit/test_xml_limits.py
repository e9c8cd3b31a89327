"""The hardened parser's depth and element-count limits, counted natively, refuse exactly
what a walk of every element refuses: at the limit accepted, one past it refused, wherever
in the document the excess is; comments and text do not count; the canonical re-parse
keeps the byte-size and DTD checks."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from kms_ws.domain.errors import EncodingLimit, SchemaValidationError
from kms_ws.security import xml as secure_xml
from kms_ws.security.settings import SecuritySettings

SMALL = dataclasses.replace(SecuritySettings(), max_xml_depth=6, max_xml_elements=12)

# A tree: a list of children, each a tree.
trees = st.recursive(st.just([]), lambda kids: st.lists(kids, max_size=4), max_leaves=20)


def _xml(tree: list, comment: bool) -> str:
    inner = "".join(_xml(child, comment) for child in tree)
    return f"<e>{'<!--c-->' if comment else ''}t{inner}</e>"


def _walk(el: etree._Element, depth: int = 1) -> tuple[int, int]:
    """(elements, depth) by visiting every element: the reference the limits match."""
    counts = [_walk(child, depth + 1) for child in el if isinstance(child.tag, str)]
    return 1 + sum(c for c, _ in counts), max([depth] + [d for _, d in counts])


@settings(max_examples=300, deadline=None)
@given(trees, st.booleans())
def test_limits_match_a_walk_of_every_element(tree: list, comment: bool) -> None:
    data = _xml(tree, comment).encode()
    count, depth = _walk(etree.fromstring(data))
    if depth > SMALL.max_xml_depth or count > SMALL.max_xml_elements:
        with pytest.raises(EncodingLimit):
            secure_xml.parse(data, SMALL)
    else:
        assert secure_xml.parse(data, SMALL).tag == "e"


def test_the_limits_are_exact_and_found_in_any_branch() -> None:
    nest = "<a>" * 6 + "</a>" * 6
    assert secure_xml.parse(f"<r><b/>{nest[3:-4]}</r>".encode(), SMALL) is not None  # 6 deep
    with pytest.raises(EncodingLimit, match="nesting"):  # 7 deep, in the last branch
        secure_xml.parse(f"<r><b/><b/>{nest}</r>".encode(), SMALL)
    assert secure_xml.parse(("<r>" + "<b/>" * 11 + "</r>").encode(), SMALL) is not None
    with pytest.raises(EncodingLimit, match="elements"):
        secure_xml.parse(("<r>" + "<b/>" * 12 + "</r>").encode(), SMALL)
    # comments, processing instructions and text are not elements
    assert secure_xml.parse(("<r>" + "<!--c-->x" * 50 + "<b/>" * 11 + "</r>").encode(),
                            SMALL) is not None


def test_an_entity_reference_node_is_refused() -> None:
    root = etree.fromstring(b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>',
                            etree.XMLParser(resolve_entities=False))
    with pytest.raises(SchemaValidationError, match="entity"):
        secure_xml.check_shape(root, SMALL)


def test_the_canonical_reparse_keeps_the_size_and_dtd_checks() -> None:
    with pytest.raises(EncodingLimit):
        secure_xml.parse_canonical(b"<a>" + b"x" * 60 + b"</a>", SMALL, 50)
    with pytest.raises(SchemaValidationError):
        secure_xml.parse_canonical(b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>', SMALL, 1000)
    with pytest.raises(SchemaValidationError):
        secure_xml.parse_canonical(b"<a><b></a>", SMALL, 1000)
    assert secure_xml.parse_canonical(b'<a xmlns="urn:x">t</a>', SMALL, 1000).text == "t"
