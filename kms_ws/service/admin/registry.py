"""The administered kinds, by schema element name (one module per kind)."""

from __future__ import annotations

from functools import lru_cache

from ...domain.errors import InvalidParameter, NotFound
from ...domain.realms import Right
from ..context import RequestContext
from .access_policy import AccessPolicyKind
from .assignment_policy import AssignmentPolicyKind
from .audit_policy import AuditPolicyKind
from .base import Kind, need
from .caching_policy import CachingPolicyKind
from .endpoint_type import EndpointTypeKind
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
    return {k.element: k for k in (
        KeyKind(), TemplateKind(), EndpointTypeKind(), RealmKind(), PepKind(), ClientKind(),
        ClientGroupKind(), KeyGroupKind(), AssignmentPolicyKind(), RetentionPolicyKind(),
        WrappingPolicyKind(), AuditPolicyKind(), AccessPolicyKind(), CachingPolicyKind())}


KINDS = ("Key", "KeyTemplate", "EndpointType", "Realm", "Pep", "Client", "ClientGroup",
         "KeyGroup", "KeyAssignmentPolicy", "RetentionPolicy", "WrappingPolicy", "AuditPolicy",
         "AccessDistributionPolicy", "CachingPolicy")


def kind(name: str) -> Kind:
    found = kinds().get(name)
    if found is None:
        raise InvalidParameter(f"unknown object kind {name}", supported=KINDS)
    return found


def resolve_ref(ctx: RequestContext, ref: Ref) -> Ref:
    """A reference with its id resolved (names and realm URIs become ids, except realms,
    which associations name by URI)."""
    if ref.kind == "Realm":
        from ...domain.realms import check_realm_uri
        return Ref("Realm", check_realm_uri(ref.object_id))
    return Ref(ref.kind, kind(ref.kind).resolve(ctx, ref.object_id))


def target_realms(ctx: RequestContext, target: Ref, right: Right) -> tuple[str, ...]:
    """The realms of an association's target; the caller needs `right` on it."""
    if target.kind == "Realm":
        realms: tuple[str, ...] | None = (target.object_id,)
        if ctx.repo.find_object("Realm", target.object_id) is None:
            realms = None
    else:
        realms = kind(target.kind).realms_of(ctx, target.object_id)
    if realms is None:
        raise NotFound(f"no {target.kind} {target.object_id}")
    need(ctx, realms, right, f"{target.kind} {target.object_id}")
    return realms
