"""§5.5 access/distribution policy objects: the clients, client groups, PEPs and KM
servers that may receive the keys it is associated with (directly, through their
template or through a key group)."""

from __future__ import annotations

from ...domain import access
from ...domain.errors import InvalidParameter, NotFound
from ..context import RequestContext
from .decoders import access_policy
from .messages import Document
from .policy import PolicyKind


class AccessPolicyKind(PolicyKind):
    element = "AccessDistributionPolicy"
    targets = frozenset({"Key", "KeyGroup", "KeyTemplate"})

    def validate(self, ctx: RequestContext, body: Document) -> None:
        p = access_policy("new", body)
        access.check_policy(p)
        for ids, kind in ((p.clients | p.km_servers, "Client"), (p.peps, "Pep")):
            for endpoint_id in sorted(ids):
                ep = ctx.uow.endpoints.get_endpoint(endpoint_id)
                if ep is None or ep.kind.value != kind:
                    raise NotFound(f"no {kind} {endpoint_id}")
                if kind == "Client" and ep.is_km_server != (endpoint_id in p.km_servers):
                    raise InvalidParameter(
                        f"client {ep.name} is {'' if ep.is_km_server else 'not '}a KM server: "
                        f"list it under {'KmServers' if ep.is_km_server else 'Clients'}")
        for group_id in sorted(p.client_groups):
            if ctx.uow.objects.get_object("ClientGroup", group_id) is None:
                raise NotFound(f"no ClientGroup {group_id}")
