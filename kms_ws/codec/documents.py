"""Administered objects between XML (the kms.xsd elements) and documents (dicts keyed by
child element names, text values, lists for repeated elements).

The structure comes from kms.xsd itself: which children a type has, in which order,
which repeat and which are complex. The schema is read once, on first use, from the
package's schemas/ (our own file, not request input)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from lxml import etree

from ..resources import schema_dir
from ..security.xml import text_of
from ..xmlns import KMS

_XS = "{http://www.w3.org/2001/XMLSchema}"
_K = f"{{{KMS}}}"


FOREIGN = "#foreign"  # document key: the element held children of another namespace


class TypeInfo:
    """Children of one complex type: name -> (type, repeated), in schema order."""

    def __init__(self) -> None:
        self.children: dict[str, tuple[TypeInfo | None, bool]] = {}


def _attr(el: etree._Element, name: str) -> str:
    value = el.get(name)
    if value is None:
        raise ValueError(f"kms.xsd: an {etree.QName(el).localname} without {name}")
    return value


@lru_cache(maxsize=1)
def _schema() -> tuple[dict[str, TypeInfo], dict[str, TypeInfo]]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    root = etree.parse(str(schema_dir() / "kms.xsd"), parser).getroot()
    named = {ct.get("name"): ct for ct in root.iterfind(_XS + "complexType")}
    types: dict[str, TypeInfo] = {}

    def build(ct: etree._Element, info: TypeInfo) -> None:
        ext = ct.find(f"{_XS}complexContent/{_XS}extension")
        if ext is not None:
            build(named[_attr(ext, "base").split(":")[1]], info)
            ct = ext
        for el in ct.iter(_XS + "element"):
            if el.getparent() is not None and _owner(el) is not ct:
                continue
            repeated = el.get("maxOccurs", "1") != "1"
            tname = (el.get("type") or "").split(":")[-1]
            inline = el.find(_XS + "complexType")
            if inline is not None:
                child = TypeInfo()
                build(inline, child)
                info.children[_attr(el, "name")] = (child, repeated)
            else:
                info.children[_attr(el, "name")] = (lookup(tname), repeated)

    def lookup(name: str) -> TypeInfo | None:
        if name not in named:
            return None
        if name not in types:
            types[name] = TypeInfo()
            build(named[name], types[name])
        return types[name]

    elements = {_attr(el, "name"): lookup(_attr(el, "type").split(":")[1])
                for el in root.iterfind(_XS + "element") if el.get("type")}
    return types, {k: v for k, v in elements.items() if v is not None}


def _owner(el: etree._Element) -> etree._Element | None:
    """The complexType or extension an element declaration belongs to."""
    p = el.getparent()
    while p is not None and p.tag not in (_XS + "complexType", _XS + "extension"):
        p = p.getparent()
    return p


def element_type(name: str) -> TypeInfo:
    return _schema()[1][name]


# ---- XML -> document ---------------------------------------------------------------------

def decode(el: etree._Element) -> dict[str, Any]:
    local = etree.QName(el).localname
    return _decode(el, element_type(local))


def _decode(el: etree._Element, info: TypeInfo) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in el:
        if not isinstance(child.tag, str):
            continue  # comments, processing instructions
        if not child.tag.startswith(_K):
            out[FOREIGN] = True  # xs:any of another namespace: the service decides
            continue
        name = child.tag[len(_K):]
        ctype, repeated = info.children.get(name, (None, False))
        value: Any = _decode(child, ctype) if ctype is not None else text_of(child).strip()
        if repeated:
            out.setdefault(name, []).append(value)
        else:
            out[name] = value
    return out


# ---- document -> XML ---------------------------------------------------------------------

def encode(parent: etree._Element, name: str, doc: dict[str, Any]) -> etree._Element:
    el = etree.SubElement(parent, _K + name)
    _encode(el, doc, element_type(name))
    return el


def _encode(el: etree._Element, doc: dict[str, Any], info: TypeInfo) -> None:
    for name, (ctype, _) in info.children.items():
        if name not in doc or doc[name] is None:
            continue
        values = doc[name] if isinstance(doc[name], list) else [doc[name]]
        for v in values:
            child = etree.SubElement(el, _K + name)
            if isinstance(v, dict):
                _encode(child, v, ctype or TypeInfo())
            else:
                child.text = _text(v)


def _text(v: Any) -> str:
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%dT%H:%M:%S") + (f".{v.microsecond:06d}Z" if v.microsecond
                                                  else "Z")
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
