"""Refusals of unauthenticated requests, audited in aggregate (issue 12.7).

A request refused before its caller was authenticated (a wrong or unknown password, a
refusal in backoff, no credential, an unknown session, an unknown signer ...) is still a
mandatory audit record, but a flood of them must not cost a synced row and a log line
each. They are counted per source (Transport.source: an IPv4 address or an IPv6 /64),
reason (the audit event: AuthenticationFailed, or the fault's error code) and interval
(`failure_audit_interval_seconds`, aligned on the epoch):

* the first refusal of an interval is recorded at once (a durable audit record, count 1,
  with its user name and why, and its log line) and opens a tally in the store;
* the others only count, in that tally (a short write that is not synced on its own),
  keeping a bounded sample of the user names tried (never a password) and why;
* when the interval has closed, the tally goes and one record carries the rest of the
  count (count = refusals after the first), the names sampled and why. Whichever process
  closes it — the background loop of each server node (`kms-ws deliver`, which `serve`
  starts) calls close_due every second — takes the tally by deleting it in the
  transaction that writes the record, so every worker and node counts into the same
  tally and exactly one of them records it. A refusal is counted at the time it is
  written, under the store's write lock, so none lands in an interval a pass has already
  closed (several nodes: as far as their clocks agree; a late one opens a tally of its
  own, recorded like any other). Tallies are in the store: a count survives a restart
  and is recorded by the next background pass.

So a source yields at most two records (and two log lines) per reason per interval, and
the counts of a source's records sum to the refusals it received.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..audit.events import AuditEvent
from ..audit.syslog import SyslogSink
from ..domain.errors import InvalidCredentials, KmsError, PasswordRefused
from ..security.settings import SecuritySettings
from . import audit_trail as trail
from .authentication import strikes_forgotten
from .context import Transport
from .ports import Store, UnitOfWork

NAMES_KEPT = 10  # user names sampled per tally
WHYS_KEPT = 10  # distinct reasons counted per tally (then "other")
NAME_CHARS = 48  # a sampled name is cut to this many characters
WHY_CHARS = 60
ACTOR_CHARS = 256  # the audit table's actor_name
_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class Refusal:
    operation: str
    reason: str  # the audit event: one tally per source, reason and interval
    source: str
    address: str  # as the request came from
    why: str  # for the audit trail only (the client got the fault's reason)
    result: str = "Denied"  # Failed: an error that refuses no one (KmsError.refusal)
    username: str | None = None
    actor_id: str | None = None
    key_id: str | None = None
    pep_id: str | None = None

    @classmethod
    def of(cls, operation: str, transport: Transport, exc: KmsError, username: str | None,
           request: Any) -> Refusal:
        if isinstance(exc, PasswordRefused):
            why, username, actor = exc.why, exc.username, exc.endpoint_id
        else:
            why, actor = exc.reason, None
        return cls(operation=operation[:64],
                   reason="AuthenticationFailed" if isinstance(exc, InvalidCredentials)
                   else exc.error_code, source=transport.source,
                   address=(transport.remote_addr or "local")[:64], why=_cut(why, WHY_CHARS),
                   result="Denied" if exc.refusal else "Failed", username=username, actor_id=actor,
                   key_id=getattr(request, "key_id", None),
                   pep_id=getattr(request, "pep_id", None))


def interval_start(now: datetime, seconds: int) -> datetime:
    elapsed = int((now - _EPOCH).total_seconds())
    return _EPOCH + timedelta(seconds=elapsed - elapsed % seconds)


def record(uow: UnitOfWork, refusal: Refusal, now: datetime, interval: int,
           durable: bool) -> list[AuditEvent] | None:
    """Count a refusal; the audit event to record when it opens an interval. Opening one
    needs a durable transaction: None, with nothing written, when this one is not (count
    it again in a durable one)."""
    start = interval_start(now, interval)
    row = uow.refusals.tally(refusal.source, refusal.reason, start)
    if row is None:
        if not durable:
            return None
        uow.refusals.insert_tally(source=refusal.source, reason=refusal.reason, started_at=start,
                                  operation=refusal.operation, at=now,
                                  detail=json.dumps(_counted({}, refusal)))
        return [_first_event(refusal, now, start, interval)]
    uow.refusals.update_tally(refusal.source, refusal.reason, start, count=row.count + 1, at=now,
                              detail=json.dumps(_counted(json.loads(row.detail), refusal)))
    return []


def close_due(db: Store, settings: SecuritySettings, now: datetime,
              syslog: SyslogSink | None = None, batch: int = 100) -> int:
    """Record every tally whose interval has closed; the number of records written."""
    interval = settings.failure_audit_interval_seconds
    written = 0
    while True:
        with db.unit_of_work(write=True) as uow:
            rows = uow.refusals.due_tallies(interval_start(now, interval), batch)
            events = [_closing_event(row, interval) for row in rows
                      if uow.refusals.take_tally(row.source, row.reason, row.started_at)
                      and row.count > 1]
            to_syslog = trail.record_routed(events, uow, True, unauthenticated=True)
        trail.send(syslog, to_syslog)
        written += len(events)
        if len(rows) < batch:
            return written


def tidy(db: Store, settings: SecuritySettings, now: datetime,
         syslog: SyslogSink | None = None) -> int:
    """The periodic pass of the server's background loop: record the tallies whose
    interval has closed, and drop the backoff counts nothing needs any more. Returns the
    records written. It takes the write lock only when there is something to do."""
    with db.unit_of_work() as uow:
        due = bool(uow.refusals.due_tallies(
            interval_start(now, settings.failure_audit_interval_seconds),
                                    1))
        stale = uow.refusals.stale_strikes(*strikes_forgotten(settings, now))
    written = close_due(db, settings, now, syslog) if due else 0
    if stale:
        with db.unit_of_work(write=True, durable=False) as uow:
            uow.refusals.forget_strikes(*strikes_forgotten(settings, now))
    return written


def _counted(detail: dict[str, Any], refusal: Refusal) -> dict[str, Any]:
    detail["result"] = refusal.result  # one per reason (the fault's error code)
    names: list[str] = detail.setdefault("names", [])
    if refusal.username is not None:
        name = _cut(refusal.username, NAME_CHARS)
        if name not in names:
            if len(names) < NAMES_KEPT:
                names.append(name)
            else:
                detail["other_names"] = detail.get("other_names", 0) + 1
    whys: dict[str, int] = detail.setdefault("why", {})
    why = refusal.why if refusal.why in whys or len(whys) < WHYS_KEPT else "other"
    whys[why] = whys.get(why, 0) + 1
    return detail


def _first_event(r: Refusal, now: datetime, start: datetime, interval: int) -> AuditEvent:
    end = start + timedelta(seconds=interval)
    return AuditEvent(
        now, r.operation, r.reason, r.result, r.actor_id,
        _cut(r.username, ACTOR_CHARS) if r.username is not None else None,
        key_id=r.key_id, pep_id=r.pep_id, count=1,
        message=f"{r.why} from {r.address}; the first refusal from {r.source} in the "
                f"interval {_time(start)} to {_time(end)}: further ones are counted and "
                "recorded when it closes")


def _closing_event(row: Any, interval: int) -> AuditEvent:
    detail = json.loads(row.detail)
    end = row.started_at + timedelta(seconds=interval)
    whys = ", ".join(f"{why}: {n}" for why, n in sorted(detail.get("why", {}).items()))
    names = ", ".join(repr(n) for n in detail.get("names", []))
    if detail.get("other_names"):
        names += f" and {detail['other_names']} more"
    more = row.count - 1
    return AuditEvent(
        row.last_at, row.operation, row.reason, detail.get("result", "Denied"), count=more,
        message=f"{more} more refusal{'s' if more != 1 else ''} from {row.source} in the "
                f"interval {_time(row.started_at)} to {_time(end)}, {row.count} in all "
                f"({whys}); user names tried: {names or 'none'}")


def _cut(text: str, limit: int) -> str:
    """At most `limit` characters ("…" marks a cut)."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _time(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")
