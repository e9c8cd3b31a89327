"""The administrative service handlers: one set for every object kind (the SOAP
operations and WS-Transfer call the same ones). Every handler requires an
administrator; realm rights on each object decide the rest."""

from __future__ import annotations

from ...domain.errors import InvalidParameter
from ...domain.realms import Right
from .. import bindings
from ..context import RequestContext
from ..messages import BindingQuery, BindingQueryResult
from .base import require_admin
from .messages import (
    AdminRequest,
    AdminResult,
    AuditQuery,
    AuditQueryResult,
    Ref,
)
from .registry import kind, resolve_ref


def admin_create(ctx: RequestContext, req: AdminRequest) -> AdminResult:
    require_admin(ctx)
    return AdminResult(req.kind, (kind(req.kind).create(ctx, req),))


def admin_get(ctx: RequestContext, req: AdminRequest) -> AdminResult:
    require_admin(ctx)
    k = kind(req.kind)
    return AdminResult(req.kind, (k.get(ctx, k.resolve(ctx, req.object_id or "")),))


def admin_list(ctx: RequestContext, req: AdminRequest) -> AdminResult:
    require_admin(ctx)
    docs, more = kind(req.kind).list(ctx, req)
    return AdminResult(req.kind, tuple(docs), more)


def admin_edit(ctx: RequestContext, req: AdminRequest) -> AdminResult:
    require_admin(ctx)
    return AdminResult(req.kind, (kind(req.kind).edit(ctx, req),))


def admin_delete(ctx: RequestContext, req: AdminRequest) -> AdminResult:
    require_admin(ctx)
    k = kind(req.kind)
    resolved = AdminRequest("Delete", req.kind, k.resolve(ctx, req.object_id or ""),
                            version=req.version)
    doc = k.delete(ctx, resolved)
    return AdminResult(req.kind, (doc,) if doc is not None else (), removed=doc is None)


def _association(ctx: RequestContext, req: AdminRequest) -> tuple[str, Ref]:
    require_admin(ctx)
    if req.target is None:
        raise InvalidParameter("an association names its target")
    k = kind(req.kind)
    return k.resolve(ctx, req.object_id or ""), resolve_ref(ctx, req.target)


def admin_associate(ctx: RequestContext, req: AdminRequest) -> AdminResult:
    object_id, target = _association(ctx, req)
    if req.rights and target.kind != "Realm":
        raise InvalidParameter("rights are given with a realm association")
    kind(req.kind).associate(ctx, object_id, target, req.rights)
    return AdminResult(req.kind, (kind(req.kind).get(ctx, object_id),))


def admin_disassociate(ctx: RequestContext, req: AdminRequest) -> AdminResult:
    object_id, target = _association(ctx, req)
    kind(req.kind).disassociate(ctx, object_id, target)
    return AdminResult(req.kind, (kind(req.kind).get(ctx, object_id),))


def admin_audit(ctx: RequestContext, req: AuditQuery) -> AuditQueryResult:
    """Audit records by key, client and time. A key filter needs Read on the key."""
    require_admin(ctx)
    if req.key_id is not None:
        kind("Key").load(ctx, req.key_id, Right.READ)  # type: ignore[attr-defined]
    records = ctx.uow.audit.audit_query(key_id=req.key_id, actor_id=req.actor_id, since=req.since,
                                        until=req.until, limit=req.max_records)
    return AuditQueryResult(tuple(records))


def admin_bindings(ctx: RequestContext, req: BindingQuery) -> BindingQueryResult:
    """§5.1: which keys protected data set X; which data sets key K protected: the
    clients' GetBindings (service.bindings), for an administrator."""
    require_admin(ctx)
    return bindings.get_bindings(ctx, req)
