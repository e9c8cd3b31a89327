"""Dates change a key's state (§4.1: T_EXPIRED, T_DISABLED) without anyone editing it: the
transition is a change all the same. When one is due, the deliverer (kms_ws.wsman.delivery)
records it on the change sequence — GetUpdateList from an older token lists the key in
its new state — and raises UpdatePending for its subscribers, in one write transaction.

Several nodes (or a restarted deliverer) may find the same transition due: the store's
claim is a conditional UPDATE only one of them wins (service.ports.Keys.claim_transition),
so a transition is announced once. VERSION and EDIT_DATETIME do not move: the dates were
in the key's attributes already; what moves is the key's place on the change sequence.
A state change is a mandatory audit event (§5.4): `KeyExpired` / `KeyDisabled`, recorded
in the claim's transaction (so once, by the node that won it) and sent to syslog."""

from __future__ import annotations

from datetime import datetime

from ..audit.events import AuditEvent
from ..audit.syslog import SyslogSink
from ..domain.lifecycle import effective_state, next_transition, transitions
from . import audit_trail as trail
from . import notifications
from .ports import Store

OPERATION = "KeyDates"  # the audit records' operation: no request made the change

BATCH = 100  # transitions announced per transaction


def announce_due(store: Store, now: datetime, syslog: SyslogSink | None = None) -> int:
    """Record the key transitions due at `now` on the change sequence, audit them and tell
    their subscribers; returns how many this call announced (claimed by no one else)."""
    with store.unit_of_work() as uow:
        if not uow.keys.due_transitions(now, limit=1):
            return 0  # the usual pass: one indexed read, no write transaction
    events: list[AuditEvent] = []
    claimed = 0
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
            claimed += 1
            # one record per state entered: T_EXPIRED and T_DISABLED may both have passed
            for at, state in transitions(key, due, now) or [(due, effective_state(key, due))]:
                events.append(AuditEvent(now, OPERATION, f"Key{state.value}", "Success",
                                         key_id=key_id, message=f"{state.value} since "
                                         f"{at:%Y-%m-%dT%H:%M:%S}Z (its date passed)"))
        routed = trail.record_routed(events, uow, True)
    trail.send(syslog, routed)
    return claimed
