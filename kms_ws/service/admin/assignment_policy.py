"""§5.1 key-assignment policy objects. Applied by GetKey by data (kms_ws.service.keys)
to callers who may reference the policy through a realm; associating it with a realm
assigns it. The keys it makes go into the realms it applies in (service.assignment), so
associating it with a realm needs the Create right there, as making a key there does."""

from __future__ import annotations

from ...domain import assignment
from ...domain.durations import check_duration
from ...domain.errors import NotFound
from ...domain.model import NameValue
from ...domain.realms import Right
from ..context import RequestContext
from .messages import Document
from .policy import PolicyKind


def to_domain(policy_id: str, body: Document) -> assignment.AssignmentPolicy:
    return assignment.AssignmentPolicy(
        policy_id, tuple(NameValue(c["Name"], c["Value"]) for c in body.get("Condition", [])),
        body.get("Generation", ""), body.get("Period"), body.get("TemplateId"))


class AssignmentPolicyKind(PolicyKind):
    element = "KeyAssignmentPolicy"
    realm_assigns = True
    target_right = Right.CREATE  # the keys it makes go into the realms it applies in

    def validate(self, ctx: RequestContext, body: Document) -> None:
        p = to_domain("new", body)
        assignment.check_policy(p)
        if p.period:
            check_duration(p.period)
        if p.template_id and ctx.repo.get_template(template_id=p.template_id) is None:
            raise NotFound(f"no key template {p.template_id}")
