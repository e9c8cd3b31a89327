"""Document helpers shared by the kinds kept outside the objects table."""

from __future__ import annotations

from ...domain.model import NameValue
from ..context import RequestContext
from .messages import Document

POLICY_FIELDS = {"CachingPolicy": "CachingPolicyId", "WrappingPolicy": "WrappingPolicyId",
                 "RetentionPolicy": "RetentionPolicyId",
                 "AccessDistributionPolicy": "AccessPolicyId",
                 "KeyAssignmentPolicy": "KeyAssignmentPolicyId"}


def policy_ids(ctx: RequestContext, kind: str, object_id: str,
               allowed: tuple[str, ...]) -> Document:
    out: Document = {}
    for pkind, pid in ctx.repo.sources_of(kind, object_id, list(POLICY_FIELDS)):
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
