"""§6.11: a change to a key, or to an object of a custom update type (its deletion too),
raises a pending UpdatePending for every live subscription it concerns, in the
transaction that made the change (so it survives a crash or restart)."""

from __future__ import annotations

from datetime import datetime

from ..domain.model import Key
from ..domain.realms import Right, allows
from .context import RequestContext
from .ports import UnitOfWork
from .update_types import types_of


def key_changed(ctx: RequestContext, key: Key, seq: int) -> None:
    notify_key(ctx.uow, key, seq, ctx.now)


def notify_key(uow: UnitOfWork, key: Key, seq: int, now: datetime) -> None:
    """Subscribers with the Read right on the key are told (others could not fetch it);
    and, whatever their right, those that received it (§4.1 USE_BY_CLIENTS / USE_BY_PEPS:
    "the KMS is capable of initiating unsolicited updates to a KMS Client when a key's
    attributes or policies change"): a client's own subscriptions, and subscriptions
    scoped to a PEP it was delivered to."""
    used = set(uow.keys.use_by(key.key_id))
    for sub in uow.subscriptions.subscriptions_for_key(key, now):
        if ("Pep", sub.pep_id) in used or (sub.pep_id is None
                                           and ("Client", sub.endpoint_id) in used):
            uow.subscriptions.raise_pending(sub.subscription_id, seq, now)
            continue
        ep = uow.endpoints.get_endpoint(sub.endpoint_id)
        if ep is not None and allows(ep.grants, key.realms, Right.READ):
            uow.subscriptions.raise_pending(sub.subscription_id, seq, now)


def object_changed(ctx: RequestContext, kind: str, realms: tuple[str, ...], seq: int) -> None:
    """Subscribers to a custom type listing objects of `kind`, with the Read right on this
    one (in `realms`)."""
    types = types_of(kind)
    if not types:
        return
    for sub in ctx.uow.subscriptions.subscriptions_for_object(types, realms, ctx.now):
        ep = ctx.uow.endpoints.get_endpoint(sub.endpoint_id)
        if ep is not None and allows(ep.grants, realms, Right.READ):
            ctx.uow.subscriptions.raise_pending(sub.subscription_id, seq, ctx.now)


def object_removed(ctx: RequestContext, kind: str, object_id: str, version: int,
                   realms: tuple[str, ...]) -> None:
    """An object of `kind` (last at `version`, in `realms`) is being deleted: when a custom
    type lists its kind, the removal takes a place on the change sequence (GetUpdateList
    lists it after the token) and its subscribers are told, like of a change."""
    if types_of(kind):
        seq = ctx.uow.changes.record_removal(kind, object_id, version, realms, ctx.now)
        object_changed(ctx, kind, realms, seq)
