"""§6.12 lost visibility: a reader that could see an object and no longer can learns of
it as a removal in its next GetUpdateList from an older token — not only when the object
is deleted (service.notifications.object_removed), but when it leaves the reader's
realms, or the reader loses the Read right where it is. Nobody else learns of it: a
removal is listed to readers with Read in a realm the object left and in none it stayed
in, or (a right lost) to that one reader. Subscribers who may list it are told
(UpdatePending), as of a change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from ..domain.model import EndpointKind, Key
from ..domain.realms import Grants, Right, realms_with
from .context import RequestContext
from .notifications import key_changed, object_changed
from .ports import UnitOfWork
from .update_types import KEY_KIND, LISTED_KINDS, kinds_of, types_of


def key_left_realms(ctx: RequestContext, key: Key, left: Sequence[str]) -> None:
    """`key` (as it was) left `left`: its readers there that cannot read it in the realms
    it stays in learn of its removal."""
    kept = tuple(r for r in key.realms if r not in left)
    seq = ctx.uow.changes.record_removal(KEY_KIND, key.key_id, key.version, left, ctx.now,
                                         kept=kept)
    key_changed(ctx, replace(key, realms=tuple(left)), seq)


def object_left_realms(ctx: RequestContext, kind: str, object_id: str, version: int,
                       realms: Sequence[str], left: Sequence[str]) -> None:
    """An object of `kind` in `realms` (at `version`) left `left`: the same, when a custom
    update type lists its kind."""
    if not types_of(kind):
        return
    kept = tuple(r for r in realms if r not in left)
    seq = ctx.uow.changes.record_removal(kind, object_id, version, left, ctx.now, kept=kept)
    object_changed(ctx, kind, tuple(left), seq)


def reads_lost(uow: UnitOfWork, endpoint_id: str, before: Grants,
               now: datetime) -> None:
    """The endpoint's grants changed from `before`: where it lost the Read right, every
    listed object it can no longer read becomes a removal for it alone, and its
    subscriptions that list them are told. Call after the grants changed."""
    ep = uow.endpoints.get_endpoint(endpoint_id)
    if ep is None or ep.kind is not EndpointKind.CLIENT:  # a PEP lists through its client
        return
    kept = realms_with(ep.grants, Right.READ)
    lost = tuple(r for r in realms_with(before, Right.READ) if r not in kept)
    if not lost:
        return
    last = uow.changes.record_lost_reads(endpoint_id, LISTED_KINDS, lost, kept, now)
    for sub in uow.subscriptions.subscriptions_of(endpoint_id):
        seqs = [last[k] for k in kinds_of(sub.update_type) if k in last]
        if seqs and sub.expires > now:
            uow.subscriptions.raise_pending([sub.subscription_id], max(seqs), now)
