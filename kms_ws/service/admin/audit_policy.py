"""§5.4 audit policy objects (kms_ws.domain.audit_policy decides what goes where).
Associated with a realm, an Enforcing audit policy applies to every event of the server;
associated with a key, key group, client or client group, to the events that touch that
key (or a key of the group) or are made by that client (or a client of the group)
(service.audit_trail). Several audit policies may watch one object: they combine."""

from __future__ import annotations

from ...domain import audit_policy
from ..context import RequestContext
from .decoders import audit_policy as to_domain
from .messages import Document
from .policy import PolicyKind


class AuditPolicyKind(PolicyKind):
    element = "AuditPolicy"
    realm_assigns = True
    several_per_target = True
    targets = frozenset({"Key", "KeyGroup", "Client", "ClientGroup"})

    def validate(self, ctx: RequestContext, body: Document) -> None:
        audit_policy.check_policy(to_domain("new", body))
