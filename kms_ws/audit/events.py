"""One audit event per security-relevant outcome: who, what, which key, when, result."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

log = logging.getLogger("kms_ws.audit")


@dataclass(frozen=True)
class AuditEvent:
    at: datetime
    operation: str
    event: str
    result: str  # Success | Denied | Failed
    actor_id: str | None = None
    actor_name: str | None = None
    key_id: str | None = None
    pep_id: str | None = None
    message: str | None = None
    count: int | None = None  # the events an aggregated record stands for (None: one)


class AuditTable(Protocol):
    """Where audit records are appended (service.ports.AuditTrail)."""

    def append_audit(self, records: Sequence[dict[str, Any]]) -> None: ...


def emit_all(events: Sequence[AuditEvent], table: AuditTable | None = None) -> None:
    """Write events to the audit log and, given the audit table of a unit of work, append
    them to its chain together (one link of the chain's head for all of them)."""
    if log.isEnabledFor(logging.INFO):
        for event in events:
            fields = {k: v for k, v in asdict(event).items() if v is not None}
            fields["at"] = event.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            log.info(json.dumps(fields, sort_keys=True))
    if table is not None:
        table.append_audit([{
            "at": e.at, "actor_id": e.actor_id, "actor_name": e.actor_name,
            "operation": e.operation, "event": e.event, "result": e.result,
            "key_id": e.key_id, "pep_id": e.pep_id, "reported_at": None,
            "message": e.message, "count": e.count} for e in events])
