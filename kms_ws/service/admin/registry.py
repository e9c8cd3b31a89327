"""The administered kinds, by schema element name (one module per kind)."""

from __future__ import annotations

from functools import lru_cache

from ...domain.errors import InvalidParameter
from ...domain.realms import check_realm_uri
from ..context import RequestContext
from .access_policy import AccessPolicyKind
from .assignment_policy import AssignmentPolicyKind
from .audit_policy import AuditPolicyKind
from .base import Kind
from .caching_policy import CachingPolicyKind
from .endpoint_type import EndpointTypeKind
from .endpoint_type_rule import EndpointTypeRuleKind
from .endpoints import ClientKind, PepKind
from .groups import ClientGroupKind, KeyGroupKind
from .key import KeyKind
from .messages import Ref
from .realm import RealmKind
from .retention_policy import RetentionPolicyKind
from .template import TemplateKind
from .wrapping_policy import WrappingPolicyKind


@lru_cache(maxsize=1)
def kinds() -> dict[str, Kind]:
    table: dict[str, Kind] = {k.element: k for k in (
        KeyKind(), TemplateKind(), EndpointTypeKind(), RealmKind(), PepKind(), ClientKind(),
        ClientGroupKind(), KeyGroupKind(), AssignmentPolicyKind(), RetentionPolicyKind(),
        WrappingPolicyKind(), AuditPolicyKind(), AccessPolicyKind(), CachingPolicyKind(),
        EndpointTypeRuleKind())}
    for k in table.values():
        k.peers = table  # an association's target is another kind (Kind.target_realms)
    return table


KINDS = ("Key", "KeyTemplate", "EndpointType", "Realm", "Pep", "Client", "ClientGroup",
         "KeyGroup", "KeyAssignmentPolicy", "RetentionPolicy", "WrappingPolicy", "AuditPolicy",
         "AccessDistributionPolicy", "CachingPolicy", "EndpointTypeRule")


def kind(name: str) -> Kind:
    found = kinds().get(name)
    if found is None:
        raise InvalidParameter(f"unknown object kind {name}", supported=KINDS)
    return found


def resolve_ref(ctx: RequestContext, ref: Ref) -> Ref:
    """A reference with its id resolved (names and realm URIs become ids, except realms,
    which associations name by URI)."""
    if ref.kind == "Realm":
        return Ref("Realm", check_realm_uri(ref.object_id))
    return Ref(ref.kind, kind(ref.kind).resolve(ctx, ref.object_id))
