"""§6.11: a change to a key, or to an object of a custom update type (its deletion too),
raises a pending UpdatePending for every live subscription it concerns, in the
transaction that made the change (so it survives a crash or restart)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..domain.model import Key
from ..domain.realms import Right, allows
from ..domain.records import Subscription
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
    subs = uow.subscriptions.subscriptions_for_key(key, now)
    received = {s.subscription_id for s in subs if ("Pep", s.pep_id) in used or
                (s.pep_id is None and ("Client", s.endpoint_id) in used)}
    told = [s for s in subs if s.subscription_id in received]
    told += _readers(uow, [s for s in subs if s.subscription_id not in received], key.realms)
    uow.subscriptions.raise_pending([s.subscription_id for s in told], seq, now)


def object_changed(ctx: RequestContext, kind: str, realms: tuple[str, ...], seq: int) -> None:
    """Subscribers to a custom type listing objects of `kind`, with the Read right on this
    one (in `realms`)."""
    types = types_of(kind)
    if not types:
        return
    subs = ctx.uow.subscriptions.subscriptions_for_object(types, realms, ctx.now)
    ctx.uow.subscriptions.raise_pending(
        [s.subscription_id for s in _readers(ctx.uow, subs, realms)], seq, ctx.now)


def _readers(uow: UnitOfWork, subs: Sequence[Subscription],
             realms: Sequence[str]) -> list[Subscription]:
    """The subscriptions whose endpoint has the Read right on an object in `realms` (its
    grants there read for all of them at once: one change may concern every subscriber)."""
    grants = uow.endpoints.grants_in({s.endpoint_id for s in subs}, realms)
    return [s for s in subs if s.endpoint_id in grants
            and allows(grants[s.endpoint_id], realms, Right.READ)]


def object_removed(ctx: RequestContext, kind: str, object_id: str, version: int,
                   realms: tuple[str, ...]) -> None:
    """An object of `kind` (last at `version`, in `realms`) is being deleted: when a custom
    type lists its kind, the removal takes a place on the change sequence (GetUpdateList
    lists it after the token) and its subscribers are told, like of a change."""
    if types_of(kind):
        seq = ctx.uow.changes.record_removal(kind, object_id, version, realms, ctx.now)
        object_changed(ctx, kind, realms, seq)
