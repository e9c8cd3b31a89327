"""Failed password authentications: backoff per user name and per source, then lockout.

Pure rules; the store keeps the counts (shared by every worker and node) and the service
applies them (service.authentication).

Backoff: each user name — registered or not, so that the backoff tells nothing about
which names exist — and each source address has a count of failures. From the
`start_after`-th failure on, every failure bars further attempts for 1 s, then 2, 4, 8
... up to `max_seconds`; an attempt while barred is refused without being checked, and is
not counted. A count is forgotten `memory_seconds` after its last failure. A success does
not reset it: that would tell whoever is guessing that the name exists and was used.

Lockout: a client whose password was wrong `lock_after` times with no right one between is
Locked for `lockout_seconds` (0: until an administrator or `kms-ws client unlock` unlocks
it). After a lockout the count stays: the next wrong password locks again, the right one
clears it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .model import ClientState, Endpoint


@dataclass(frozen=True)
class Strikes:
    """The failures counted against one user name or one source."""

    failures: int
    last_at: datetime
    barred_until: datetime | None = None

    def bars(self, now: datetime) -> bool:
        return self.barred_until is not None and now < self.barred_until


def after_failure(prev: Strikes | None, now: datetime, start_after: int,
                  memory_seconds: int, max_seconds: int) -> Strikes:
    """The strikes once one more failure is counted (start_after 0: no backoff)."""
    if prev is None or (now - prev.last_at).total_seconds() > memory_seconds:
        failures = 1
    else:
        failures = prev.failures + 1
    barred = None
    if start_after and failures >= start_after:
        step = failures - start_after
        delay = max_seconds if step >= 32 else min(2 ** step, max_seconds)
        barred = now + timedelta(seconds=delay)
    return Strikes(failures, now, barred)


def locked_before(now: datetime, lockout_seconds: int) -> datetime | None:
    """Lockouts that began before this have run out (None: lockouts do not run out)."""
    return now - timedelta(seconds=lockout_seconds) if lockout_seconds > 0 else None


def lock_over(ep: Endpoint, now: datetime, lockout_seconds: int) -> bool:
    """A Locked client whose lockout has run out (it authenticates again)."""
    before = locked_before(now, lockout_seconds)
    return ep.state is ClientState.LOCKED and before is not None and \
        ep.locked_at is not None and ep.locked_at < before


def effective_state(ep: Endpoint, now: datetime, lockout_seconds: int) -> ClientState:
    """The state a client authenticates in: a lockout that has run out is Active."""
    return ClientState.ACTIVE if lock_over(ep, now, lockout_seconds) else ep.state


def may_authenticate(ep: Endpoint, now: datetime, lockout_seconds: int) -> bool:
    return effective_state(ep, now, lockout_seconds) in (ClientState.ACTIVE,
                                                         ClientState.AUTHENTICATED)
