"""Document helpers shared by the kinds kept outside the objects table."""

from __future__ import annotations

from ...domain.errors import InvalidParameter
from ...domain.model import Extensions, NameValue
from ..context import RequestContext
from .messages import Document

POLICY_FIELDS = {"CachingPolicy": "CachingPolicyId", "WrappingPolicy": "WrappingPolicyId",
                 "RetentionPolicy": "RetentionPolicyId",
                 "AccessDistributionPolicy": "AccessPolicyId",
                 "KeyAssignmentPolicy": "KeyAssignmentPolicyId"}


def policy_ids(ctx: RequestContext, kind: str, object_id: str,
               allowed: tuple[str, ...]) -> Document:
    out: Document = {}
    for pkind, pid in ctx.uow.objects.sources_of(kind, object_id, list(POLICY_FIELDS)):
        field = POLICY_FIELDS[pkind]
        if field in allowed:
            out.setdefault(field, pid)
    return out


def pairs(doc: Document, name: str, item: str = "Attribute") -> tuple[NameValue, ...]:
    box = doc.get(name)
    items = box.get(item, []) if isinstance(box, dict) else []
    return tuple(NameValue(a["Name"], a.get("Value", "")) for a in items)


def pair_doc(values: tuple[NameValue, ...], item: str = "Attribute") -> Document | None:
    return {item: [{"Name": a.name, "Value": a.value} for a in values]} if values else None


def clean(doc: Document) -> Document:
    return {k: v for k, v in doc.items() if v is not None and v != () and v != []}


EXTENSION_FIELDS = (("VendorSpecificExtensions", "vendor"),
                    ("ApplicationExtensions", "application"))


def extensions(doc: Document) -> Extensions:
    """A key's or template's extensions from its document. Only named values are kept:
    elements of other namespaces are refused rather than silently dropped."""
    sections: dict[str, tuple[NameValue, ...]] = {}
    for field, attr in EXTENSION_FIELDS:
        box = doc.get(field)
        if isinstance(box, dict) and box.get("#foreign"):
            raise InvalidParameter(f"{field}: only Extension Name/Value entries are stored, "
                                   "not elements of other namespaces")
        values = pairs(doc, field, "Extension")
        names = [v.name for v in values]
        if len(set(names)) != len(names):
            raise InvalidParameter(f"{field}: an Extension name is given twice")
        sections[attr] = tuple(sorted(values, key=lambda a: a.name))
    return Extensions(**sections)


def extensions_doc(ext: Extensions) -> Document:
    return {field: pair_doc(getattr(ext, attr), "Extension")
            for field, attr in EXTENSION_FIELDS}
