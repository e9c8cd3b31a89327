"""§5.6 the T_CACHED delivered with keys listed to one receiver (GetUpdateList pages,
WS-Transfer Get), resolved exactly as GetKey resolves it (service.policies: the key's
Enforcing caching policy — its own, else its template's, else that of the most specific
key group it is in, domain.groups.rank — matched against the receiver's capabilities
and its endpoint type's), but for a whole page at once: the receiver's capabilities, the
caching policies of the page's keys and templates, and the key groups carrying one with
their static members among the page's keys are read once per page (a few queries, none
per key); each key is then resolved in memory (dynamic key groups by its data-set
bindings, evaluated now). Each key also gets its CACHING_TYPE and, when a policy's rule
decided, that caching policy among its applied policies (a listing delivers no value: no
other policy decides it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..domain import caching, groups
from ..domain.model import Endpoint, Key
from ..domain.records import KeySelection
from .admin.decoders import caching_rules, to_group
from .context import RequestContext
from .policies import applied, capabilities

POLICY = "CachingPolicy"


@dataclass(frozen=True)
class Rules:
    """One caching policy's rules, with its id (named among the key's applied policies)."""

    policy_id: str
    rules: list[caching.CachingRule]


@dataclass
class CachingView:
    """What one receiver may cache, for the keys of one page."""

    capabilities: frozenset[str]
    rules: dict[tuple[str, str], Rules] = field(default_factory=dict)
    group_rules: list[tuple[groups.Group, Rules]] = \
        field(default_factory=list)  # the most specific one a key is in decides
    static: dict[str, set[str]] = field(default_factory=dict)  # key id -> group ids

    def caching(self, key: Key) -> None:
        """Set the key's T_CACHED and CACHING_TYPE, and name the deciding policy."""
        rules = self.rules.get(("Key", key.key_id))
        if rules is None and key.template_id:
            rules = self.rules.get(("KeyTemplate", key.template_id))
        if rules is None:
            rules = self._by_group(key)
        found = caching.own(key.t_cached) if rules is None else \
            caching.resolve(rules.rules, self.capabilities, key.t_cached)
        key.t_cached, key.caching_type = found.t_cached, found.caching_type
        if found.by_policy and rules is not None:
            applied(key, POLICY, rules.policy_id)

    def _by_group(self, key: Key) -> Rules | None:
        static = self.static.get(key.key_id, set())
        attrs = None
        best: tuple[tuple[object, ...], Rules] | None = None
        for group, rules in self.group_rules:
            if group.group_id in static:
                rank = groups.rank(group, True)
            # a dynamic group's every rule needs a data-set value: none, no member
            elif group.dynamic and key.datasets:
                if attrs is None:
                    attrs = groups.attribute_map((d.name, d.value) for d in key.datasets)
                if not groups.is_member(group, key.key_id, attrs):
                    continue
                rank = groups.rank(group, False)
            else:
                continue
            if best is None or rank < best[0]:
                best = (rank, rules)
        return best[1] if best else None


def caching_view(ctx: RequestContext, receiver: Endpoint, keys: KeySelection) -> CachingView:
    """`keys`: the page's change_seq range (or, for a few keys, their ids)."""
    view = CachingView(frozenset(capabilities(ctx, receiver)))
    if not ctx.uow.objects.list_objects(POLICY, None, limit=1, states=["Enforcing"]):
        return view  # the usual case: no caching policy in force, one cached query
    parsed: dict[str, Rules] = {}
    for policy_id, body, kind, target in ctx.uow.objects.policies_on_keys(POLICY, keys):
        if policy_id not in parsed:
            parsed[policy_id] = Rules(policy_id, caching_rules(body))
        view.rules[(kind, target)] = parsed[policy_id]
    for policy, group_id in ctx.uow.objects.enforcing_targets(POLICY, "KeyGroup"):
        obj = ctx.uow.objects.get_object("KeyGroup", group_id)
        if obj is not None:
            view.group_rules.append((to_group(obj, []),
                                     Rules(policy.object_id, caching_rules(policy.body))))
    for group_id, key_id in ctx.uow.objects.key_members_among(
            [g.group_id for g, _ in view.group_rules], keys):
        view.static.setdefault(key_id, set()).add(group_id)
    return view


def resolve_for(ctx: RequestContext, receiver: Endpoint, keys: Sequence[Key],
                seq_range: tuple[int, int] | None = None) -> None:
    """Set each key's T_CACHED and CACHING_TYPE to what `receiver` may cache it for, and
    name the caching policy that decided. seq_range: the change_seq range the keys were
    read from (a page), else they are named by id."""
    if not keys:
        return
    view = caching_view(ctx, receiver, seq_range or [k.key_id for k in keys])
    for key in keys:
        view.caching(key)
