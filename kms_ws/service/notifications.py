"""§6.11: a change to a key raises a pending UpdatePending for every live subscription it
concerns, in the transaction that made the change (so it survives a crash or restart)."""

from __future__ import annotations

from ..domain.model import Key
from ..domain.realms import Right, allows
from .context import RequestContext


def key_changed(ctx: RequestContext, key: Key, seq: int) -> None:
    """Subscribers with the Read right on the key are told (others could not fetch it)."""
    for sub in ctx.repo.updates.subscriptions_for_key(key, ctx.now):
        ep = ctx.repo.get_endpoint(sub.endpoint_id)
        if ep is not None and allows(ep.grants, key.realms, Right.READ):
            ctx.repo.updates.raise_pending(sub.subscription_id, seq, ctx.now)
