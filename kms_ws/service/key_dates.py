"""Dates change a key's state (§4.1: T_EXPIRED, T_DISABLED) without anyone editing it: the
transition is a change all the same. When one is due, the deliverer (kms_ws.wsman.delivery)
records it on the change sequence — GetUpdateList from an older token lists the key in
its new state — and raises UpdatePending for its subscribers, in one write transaction.

Several nodes (or a restarted deliverer) may find the same transition due: the store's
claim is a conditional UPDATE only one of them wins (service.ports.Keys.claim_transition),
so a transition is announced once. VERSION and EDIT_DATETIME do not move: the dates were
in the key's attributes already; what moves is the key's place on the change sequence."""

from __future__ import annotations

from datetime import datetime

from ..domain.lifecycle import next_transition
from . import notifications
from .ports import Store

BATCH = 100  # transitions announced per transaction


def announce_due(store: Store, now: datetime) -> int:
    """Record the key transitions due at `now` on the change sequence and tell their
    subscribers; returns how many this call announced (claimed by no one else)."""
    with store.unit_of_work() as uow:
        if not uow.keys.due_transitions(now, limit=1):
            return 0  # the usual pass: one indexed read, no write transaction
    announced = 0
    with store.unit_of_work(write=True) as uow:
        for key_id, due in uow.keys.due_transitions(now, limit=BATCH):
            found = uow.keys.get_key(key_id)
            if found is None:
                continue
            key = found[0]
            seq = uow.keys.claim_transition(key_id, due, next_transition(key, now),
                                            key.version, now)
            if seq is None:
                continue
            notifications.notify_key(uow, key, seq, now)
            announced += 1
    return announced
