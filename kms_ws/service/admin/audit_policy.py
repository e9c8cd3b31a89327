"""§5.4 audit policy objects (kms_ws.domain.audit_policy decides what goes where).
An audit policy applies to the whole server once Enforcing; associating it with a
realm assigns it."""

from __future__ import annotations

from ...domain import audit_policy
from ..context import RequestContext
from .messages import Document
from .policy import PolicyKind


def to_domain(policy_id: str, body: Document) -> audit_policy.AuditPolicy:
    return audit_policy.AuditPolicy(policy_id, frozenset(body.get("OperationType", [])),
                                    frozenset(body.get("EventType", [])),
                                    frozenset(body.get("Destination", [])))


class AuditPolicyKind(PolicyKind):
    element = "AuditPolicy"
    realm_assigns = True

    def validate(self, ctx: RequestContext, body: Document) -> None:
        audit_policy.check_policy(to_domain("new", body))
