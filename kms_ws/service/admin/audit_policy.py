"""§5.4 audit policy objects (kms_ws.domain.audit_policy decides what goes where).
An audit policy applies to the whole server once Enforcing; associating it with a
realm assigns it."""

from __future__ import annotations

from ...domain import audit_policy
from ..context import RequestContext
from .decoders import audit_policy as to_domain
from .messages import Document
from .policy import PolicyKind


class AuditPolicyKind(PolicyKind):
    element = "AuditPolicy"
    realm_assigns = True

    def validate(self, ctx: RequestContext, body: Document) -> None:
        audit_policy.check_policy(to_domain("new", body))
