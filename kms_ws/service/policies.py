"""The policies in force for one key delivery: found by association, resolved by the
domain rules (caching per endpoint capability, access/distribution, wrapping order).

A key's policy of each kind is the Enforcing one associated with the key itself, else
with its template, else with a key group it belongs to (static, or dynamic by its
data-set bindings evaluated now; several groups: the most specific, domain.groups.rank)."""

from __future__ import annotations

from ..domain import access as access_rules
from ..domain import caching, groups
from ..domain.errors import PermissionDenied
from ..domain.model import AdminObject, AppliedPolicy, Endpoint, Key
from ..domain.wrapping_policy import WrappingChoice, WrappingResolution, resolve_wrapping
from .admin.decoders import access_policy, caching_rules, capability_names, to_group
from .context import RequestContext
from .ports import UnitOfWork

_RANK = {"Key": 0, "KeyTemplate": 1, "KeyGroup": 2}


class AccessPolicyDenied(PermissionDenied):
    error_code = "E_ACCESS_POLICY"


def key_groups(ctx: RequestContext, key: Key) -> list[str]:
    """Ids of the key groups the key is in, the most specific first (groups.rank)."""
    static = [gid for _, gid in ctx.uow.objects.sources_of("Key", key.key_id, ["KeyGroup"])]
    attrs = groups.attribute_map((d.name, d.value) for d in key.datasets)
    dynamic = [g for g in (_group(o) for o in ctx.uow.objects.dynamic_groups("KeyGroup"))
               if groups.is_member(g, key.key_id, attrs)]
    if len(static) + len(dynamic) <= 1:  # the usual case: nothing to rank, no extra read
        return static + [g.group_id for g in dynamic]
    ranked = [(groups.rank(g, False), g.group_id) for g in dynamic]
    for gid in static:
        obj = ctx.uow.objects.get_object("KeyGroup", gid)
        if obj is not None:
            ranked.append((groups.rank(_group(obj), True), gid))
    return [gid for _, gid in sorted(ranked, key=lambda r: r[0])]


def _group(obj: AdminObject) -> groups.Group:
    return to_group(obj, [])


def key_policies(ctx: RequestContext, key: Key,
                 group_ids: list[str] | None = None) -> dict[str, AdminObject]:
    group_ids = key_groups(ctx, key) if group_ids is None else group_ids
    targets = [("Key", key.key_id)] + ([("KeyTemplate", key.template_id)]
                                       if key.template_id else [])
    targets += [("KeyGroup", g) for g in group_ids]
    place = {g: i for i, g in enumerate(group_ids)}  # the most specific group first
    found = ctx.uow.objects.enforcing_policies_for(targets)
    found.sort(key=lambda f: (_RANK[f[1]], place.get(f[2], 0) if f[1] == "KeyGroup" else 0))
    chosen: dict[str, AdminObject] = {}
    for policy, _, _ in found:
        chosen.setdefault(policy.kind, policy)
    return chosen


def client_in_group(uow: UnitOfWork, client: Endpoint, group_id: str) -> bool:
    """Whether the client is a member of the client group now (static or dynamic)."""
    obj = uow.objects.get_object("ClientGroup", group_id)
    if obj is None:
        return False
    if obj.body.get("Type") != "Dynamic":
        return uow.objects.is_associated("ClientGroup", group_id, "Client", client.endpoint_id)
    attrs = groups.attribute_map([("name", client.name)] +
                                 [(a.name, a.value) for a in client.attributes])
    return groups.is_member(_group(obj), client.endpoint_id, attrs)


def key_in_group(uow: UnitOfWork, key_id: str, group_id: str) -> bool:
    """Whether the key is a member of the key group now (static, or by its data-set
    bindings for a dynamic group)."""
    obj = uow.objects.get_object("KeyGroup", group_id)
    if obj is None:
        return False
    if obj.body.get("Type") != "Dynamic":
        return uow.objects.is_associated("KeyGroup", group_id, "Key", key_id)
    found = uow.keys.get_key(key_id)
    if found is None:
        return False
    attrs = groups.attribute_map((d.name, d.value) for d in found[0].datasets)
    return groups.is_member(_group(obj), key_id, attrs)


def client_retention(ctx: RequestContext, client: Endpoint) -> list[AdminObject]:
    """The Enforcing retention policies that limit what `client` can get (§5.2 "accessible
    to a given client"): the client's own and its client groups'."""
    own = [obj for _, pid in ctx.uow.objects.sources_of("Client", client.endpoint_id,
                                                        ["RetentionPolicy"])
           if (obj := ctx.uow.objects.get_object("RetentionPolicy", pid)) is not None
           and obj.state == "Enforcing"]
    return own + [obj for obj, _ in client_groups_with(ctx, "RetentionPolicy", client)]


def client_groups_with(ctx: RequestContext, kind: str, client: Endpoint
                       ) -> list[tuple[AdminObject, str]]:
    """The Enforcing policies of `kind` on client groups the client is in, with the
    group's id (by group id)."""
    return [(policy, gid) for policy, gid in ctx.uow.objects.enforcing_targets(kind,
                                                                              "ClientGroup")
            if client_in_group(ctx.uow, client, gid)]


def check_access(ctx: RequestContext, policies: dict[str, AdminObject], key: Key,
                 client: Endpoint, pep: Endpoint | None) -> None:
    obj = policies.get("AccessDistributionPolicy")
    if obj is None:
        return
    policy = access_policy(obj.object_id, obj.body)
    if not access_rules.may_receive(policy, client.endpoint_id,
                                    pep.endpoint_id if pep else None,
                                    lambda g: client_in_group(ctx.uow, client, g),
                                    client.is_km_server):
        target = f"client {client.name}" + (f" for PEP {pep.endpoint_id}" if pep else "")
        raise AccessPolicyDenied(f"the access policy of key {key.key_id} does not allow "
                                 f"delivery to {target}")


def capabilities(ctx: RequestContext, endpoint: Endpoint) -> set[str]:
    caps = set(endpoint.capabilities)
    if endpoint.endpoint_type_id:
        etype = ctx.uow.objects.get_object("EndpointType", endpoint.endpoint_type_id)
        if etype is not None:
            caps.update(capability_names(etype.body))
    return caps


def caching_for(ctx: RequestContext, policies: dict[str, AdminObject], key: Key,
                receiver: Endpoint) -> None:
    """Set the key's T_CACHED and CACHING_TYPE for `receiver` (§5.6), and name the caching
    policy among the key's applied policies when one of its rules decided."""
    obj = policies.get("CachingPolicy")
    found = caching.own(key.t_cached) if obj is None else caching.resolve(
        caching_rules(obj.body), capabilities(ctx, receiver), key.t_cached)
    key.t_cached, key.caching_type = found.t_cached, found.caching_type
    if found.by_policy and obj is not None:
        applied(key, obj.kind, obj.object_id)


def applied(key: Key, kind: str, policy_id: str) -> None:
    """Record that a policy decided this delivery of the key (once per policy)."""
    entry = AppliedPolicy(kind, policy_id)
    if entry not in key.applied_policies:
        key.applied_policies += (entry,)


def applied_wrapping(key: Key, resolution: WrappingResolution) -> None:
    for choice in resolution.layers:
        applied(key, "WrappingPolicy", choice.policy_id)


def _choice(ctx: RequestContext, kind: str, object_id: str | None,
            source: str) -> WrappingChoice | None:
    if object_id is None:
        return None
    for _, pid in ctx.uow.objects.sources_of(kind, object_id, ["WrappingPolicy"]):
        obj = ctx.uow.objects.get_object("WrappingPolicy", pid)
        if obj is not None and obj.state == "Enforcing":
            return _as_choice(obj, source)
    return None


def _as_choice(obj: AdminObject, source: str) -> WrappingChoice:
    return WrappingChoice(obj.object_id, obj.body.get("WrappingType", ""),
                          obj.body.get("WrappingMode", ""), source)


def wrapping_for(ctx: RequestContext, key: Key, client: Endpoint, pep: Endpoint | None,
                 group_ids: list[str] | None = None) -> WrappingResolution:
    """The §5.3 wrapping that applies when `key` goes to `client` (for `pep`)."""
    if not ctx.uow.objects.list_objects("WrappingPolicy", None, limit=1, states=["Enforcing"]):
        return WrappingResolution(None, None)
    group_ids = key_groups(ctx, key) if group_ids is None else group_ids
    key_choice = _choice(ctx, "Key", key.key_id, "key") or \
        _choice(ctx, "KeyTemplate", key.template_id, "key-template")
    groups_choices = [c for c in (_choice(ctx, "KeyGroup", g, "key-group") for g in group_ids)
                      if c is not None]
    return resolve_wrapping(
        key=key_choice, key_groups=groups_choices,
        pep=_choice(ctx, "Pep", pep.endpoint_id, "pep") if pep else None,
        pep_endpoint_type=_choice(ctx, "EndpointType", pep.endpoint_type_id,
                                  "pep-endpoint-type") if pep else None,
        client=_choice(ctx, "Client", client.endpoint_id, "client"),
        client_groups=[_as_choice(obj, "client-group")
                       for obj, _ in client_groups_with(ctx, "WrappingPolicy", client)],
        client_endpoint_type=_choice(ctx, "EndpointType", client.endpoint_type_id,
                                     "client-endpoint-type"))
