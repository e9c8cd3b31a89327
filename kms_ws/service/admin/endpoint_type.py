"""§4.4 endpoint types: a named, deterministic set of capabilities (§4.8). Clients and
PEPs name their type; caching and wrapping policies can follow the type."""

from __future__ import annotations

from ...domain.errors import InUse, InvalidParameter
from ...domain.model import AdminObject
from ..context import RequestContext
from .base import StoredKind
from .decoders import capability_names
from .endpoint_type_rule import ELEMENT as RULE
from .endpoint_type_rule import MAX_RULES
from .messages import Document


class EndpointTypeKind(StoredKind):
    element = "EndpointType"
    id_field = "EndpointTypeId"

    def validate(self, ctx: RequestContext, body: Document) -> None:
        names = capability_names(body)
        if len(set(names)) != len(names):
            raise InvalidParameter("an endpoint type lists each capability once")
        if "WrappingPolicyId" in body:
            raise InvalidParameter("attach a wrapping policy by associating it with the type")

    def extra(self, ctx: RequestContext, obj: AdminObject) -> Document:
        wrapping = ctx.uow.objects.sources_of(self.element, obj.object_id, ["WrappingPolicy"])
        return {"WrappingPolicyId": wrapping[0][1]} if wrapping else {}

    def before_delete(self, ctx: RequestContext, obj: AdminObject) -> None:
        n = ctx.uow.endpoints.count_endpoints_of_type(obj.object_id)
        if n:
            raise InUse(f"{n} endpoints are of this type")
        rules = [r for r in ctx.uow.objects.list_objects(RULE, None, limit=MAX_RULES)
                 if r.body.get("EndpointTypeId") == obj.object_id]
        if rules:
            raise InUse(f"{len(rules)} endpoint type rules give this type")
