"""Versioning effects of policy changes (§4.1): a change to a policy a key references
(directly, through its template or a static key group) is a change to the key: new
VERSION and EDIT_DATETIME. Retention policies also stamp T_EXPIRED / T_DISABLED."""

from __future__ import annotations

from ...domain.model import AdminObject
from ..context import RequestContext
from ..key_versions import touch_key, touch_template
from .messages import Ref


def policy_changed(ctx: RequestContext, policy: AdminObject) -> None:
    for kind, target_id in ctx.uow.objects.targets_of(policy.kind, policy.object_id):
        target_changed(ctx, policy, Ref(kind, target_id))


def target_changed(ctx: RequestContext, policy: AdminObject, target: Ref) -> None:
    if policy.kind == "AuditPolicy":
        return  # §4.1: auditing never changes a key's VERSION
    if target.kind == "Key":
        touch_key(ctx, target.object_id)
    elif target.kind == "KeyTemplate":
        touch_template(ctx, target.object_id)
        for key_id in ctx.uow.keys.key_ids_of_template(target.object_id):
            touch_key(ctx, key_id)
    elif target.kind == "KeyGroup":
        for kind, member in ctx.uow.objects.targets_of("KeyGroup", target.object_id):
            if kind == "Key":
                touch_key(ctx, member)
