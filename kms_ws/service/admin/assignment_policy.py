"""§5.1 key-assignment policy objects. Applied by GetKey by data (kms_ws.service.keys)
to callers who may reference the policy through a realm; associating it with a realm
assigns it. The keys it makes go into the realms it applies in (service.assignment), so
associating it with a realm needs the Create right there, as making a key there does."""

from __future__ import annotations

from ...domain import assignment
from ...domain.durations import check_duration
from ...domain.errors import NotFound
from ...domain.realms import Right
from ..context import RequestContext
from .decoders import assignment_policy
from .messages import Document
from .policy import PolicyKind


class AssignmentPolicyKind(PolicyKind):
    element = "KeyAssignmentPolicy"
    realm_assigns = True
    target_right = Right.CREATE  # the keys it makes go into the realms it applies in

    def validate(self, ctx: RequestContext, body: Document) -> None:
        p = assignment_policy("new", body)
        assignment.check_policy(p)
        if p.period:
            check_duration(p.period)
        if p.template_id and ctx.uow.templates.get_template(template_id=p.template_id) is None:
            raise NotFound(f"no key template {p.template_id}")
