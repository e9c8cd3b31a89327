"""§4.4 EndpointTypeRule objects: the administrators' mapping from the CIM identity a
client or PEP presents at registration to its endpoint type (service.endpoint_identity
applies them; domain.endpoint_type_rules chooses among them)."""

from __future__ import annotations

from ...domain import endpoint_type_rules
from ...domain.errors import InvalidParameter, NotFound
from ...domain.model import AdminObject
from ...domain.realms import Right
from ..context import RequestContext
from .base import StoredKind, need
from .decoders import type_rule
from .messages import AdminRequest, Document

ELEMENT = "EndpointTypeRule"
MAX_RULES = 1000  # all are read at each registration (a few ms): a bound, not a goal


class EndpointTypeRuleKind(StoredKind):
    element = ELEMENT
    id_field = "RuleId"

    def validate(self, ctx: RequestContext, body: Document) -> None:
        if "Priority" not in body or "EndpointTypeId" not in body:
            raise InvalidParameter("an endpoint type rule has a Priority and an EndpointTypeId")
        endpoint_type_rules.check_rule(type_rule(AdminObject(
            ELEMENT, "", None, None, 1, ctx.now, ctx.now, body)))
        type_id = body["EndpointTypeId"]
        etype = ctx.uow.objects.get_object("EndpointType", type_id)
        if etype is None:
            raise NotFound(f"no EndpointType {type_id}")
        # the rule hands the type out: its author must be able to use it
        need(ctx, etype.realms, Right.REFERENCE, f"EndpointType {type_id}")

    def create(self, ctx: RequestContext, req: AdminRequest) -> Document:
        if len(ctx.uow.objects.list_objects(ELEMENT, None, limit=MAX_RULES)) >= MAX_RULES:
            raise InvalidParameter(f"at most {MAX_RULES} endpoint type rules are kept")
        return super().create(ctx, req)
