"""§4.4 / §4.6: the CIM identity a registering client or PEP presents, and the endpoint
type it gets — the one it asks for, or the one the administrators' EndpointTypeRules map
its identity to (domain.endpoint_type_rules.choose).

The rules that count are those in a realm the new endpoint joins (an administrator of
realm A does not type the endpoints of realm B). An explicitly requested type must exist
and be usable by the caller (Reference in one of its realms; else `kms:NotFound`, as an
unknown one). An administrator's request is its decision and wins over the rules; a
client registering a PEP cannot overrule them: a requested type that differs from the
one a rule gives is refused (`E_PERMISSION_DENIED`), never silently replaced. With no
rule holding, the requested type (or none) is kept."""

from __future__ import annotations

from collections.abc import Sequence

from ..domain.endpoint_type_rules import check_identity, choose, identity_document
from ..domain.errors import NotFound, PermissionDenied
from ..domain.model import Endpoint, NameValue
from ..domain.realms import Right
from .admin.base import need
from .admin.decoders import type_rule
from .admin.endpoint_type_rule import ELEMENT as RULE
from .admin.endpoint_type_rule import MAX_RULES
from .admin.messages import Document
from .context import RequestContext


def endpoint_type(ctx: RequestContext, caller: Endpoint, asked: str | None,
                  identity: Sequence[NameValue], given: bool,
                  realms: Sequence[str]) -> str | None:
    """The type of a new endpoint in `realms` presenting `identity` (`given`: the
    request carried a CimIdentity element)."""
    check_identity(identity, given)
    rule = None
    if identity:
        rules = ctx.uow.objects.list_objects(RULE, list(realms), limit=MAX_RULES)
        rule = choose((type_rule(r) for r in rules), identity)
    if asked is None:
        return rule.endpoint_type_id if rule is not None else None
    require_usable_type(ctx, asked)
    if rule is not None and rule.endpoint_type_id != asked and not caller.is_admin:
        # the rule and the type it gives are the administrators' (the caller may hold no
        # right on either): not named
        raise PermissionDenied(
            f"an administrators' endpoint type rule gives this identity another "
            f"EndpointType than {asked}: register without EndpointTypeId, or ask an "
            "administrator")
    return asked


def require_usable_type(ctx: RequestContext, type_id: str) -> None:
    """An EndpointType the caller names for an endpoint exists and is the caller's to use
    (Reference in one of its realms); one in no realm of the caller is `kms:NotFound`, as
    an unknown one."""
    etype = ctx.uow.objects.get_object("EndpointType", type_id)
    if etype is None:
        raise NotFound(f"no EndpointType {type_id}")
    need(ctx, etype.realms, Right.REFERENCE, f"EndpointType {type_id}")


def identity_doc(ctx: RequestContext, ep: Endpoint) -> Document | None:
    """The CimIdentity element's document of an endpoint (None: it presented none)."""
    return identity_document(ctx.uow.endpoints.cim_identity(ep.endpoint_id))
