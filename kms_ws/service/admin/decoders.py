"""The stored bodies of administered objects read as domain values: policies, groups and
endpoint types. The admin kinds validate with them and the service outside admin (key
delivery, assignment, caching, audit) decides with them, so they import no kind: one
reading of each body, and no import cycle between the kinds and their readers."""

from __future__ import annotations

from datetime import datetime

from ...domain import access, assignment, caching, groups, selection
from ...domain import audit_policy as audit
from ...domain import endpoint_type_rules as type_rules
from ...domain.errors import InvalidParameter
from ...domain.model import AdminObject
from .messages import Document


def ids_in(doc: Document, name: str) -> list[str]:
    box = doc.get(name)
    return list(box.get("Id", [])) if isinstance(box, dict) else []


def access_policy(policy_id: str, body: Document) -> access.AccessPolicy:
    return access.AccessPolicy(policy_id, frozenset(ids_in(body, "Clients")),
                               frozenset(ids_in(body, "ClientGroups")),
                               frozenset(ids_in(body, "Peps")),
                               frozenset(ids_in(body, "KmServers")))


def selector(doc: Document) -> selection.Selector:
    """The one selection rule of a Condition or group Rule (kms:SelectionRule's choice)."""
    given = [k for k in selection.KINDS if k in doc]
    if len(given) != 1:
        raise InvalidParameter("a selection rule is one of " + ", ".join(selection.KINDS))
    kind = given[0]
    if kind == "Range":
        bounds = doc["Range"] if isinstance(doc["Range"], dict) else {}
        return selection.Selector(kind, bounds.get("From", ""), bounds.get("To", ""))
    return selection.Selector(kind, doc[kind])


def assignment_policy(policy_id: str, body: Document,
                      created_at: datetime | None = None) -> assignment.AssignmentPolicy:
    return assignment.AssignmentPolicy(
        policy_id, tuple(assignment.Condition(c["Name"], selector(c))
                         for c in body.get("Condition", [])),
        body.get("Generation", ""), body.get("Period"), body.get("TemplateId"), created_at)


def audit_policy(policy_id: str, body: Document) -> audit.AuditPolicy:
    return audit.AuditPolicy(policy_id, frozenset(body.get("OperationType", [])),
                             frozenset(body.get("EventType", [])),
                             frozenset(body.get("Destination", [])))


def caching_rules(body: Document) -> list[caching.CachingRule]:
    return [caching.CachingRule(r["CachingType"], int(r["TCacheInterval"]), r.get("Capability"))
            for r in body.get("Rule", [])]


def group_rules(body: Document) -> tuple[groups.PatternRule, ...]:
    return tuple(groups.PatternRule(selector(r), r["Attribute"]) for r in body.get("Rule", []))


def to_group(obj: AdminObject, members: list[str]) -> groups.Group:
    return groups.Group(obj.object_id, obj.body.get("Type") == "Dynamic", frozenset(members),
                        group_rules(obj.body), obj.created_at)


def capability_names(doc: Document) -> list[str]:
    box = doc.get("Capabilities")
    items = box.get("Capability", []) if isinstance(box, dict) else []
    return [c["Name"] for c in items]


def type_rule(obj: AdminObject) -> type_rules.TypeRule:
    """An EndpointTypeRule object as the domain's rule (§4.4 mapping)."""
    body = obj.body
    return type_rules.TypeRule(
        obj.object_id, int(body.get("Priority", 0)),
        tuple((m["Property"], m["Pattern"]) for m in body.get("Match", [])),
        body.get("EndpointTypeId", ""), obj.created_at)
