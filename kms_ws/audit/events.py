"""One audit event per security-relevant outcome: who, what, which key, when, result."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime

from ..store.repository import Repository

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


def emit(event: AuditEvent, repo: Repository | None = None) -> None:
    """Write the event to the audit log and, given a repository, to the audit table."""
    if log.isEnabledFor(logging.INFO):
        fields = {k: v for k, v in asdict(event).items() if v is not None}
        fields["at"] = event.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        log.info(json.dumps(fields, sort_keys=True))
    if repo is not None:
        repo.insert_audit(at=event.at, actor_id=event.actor_id, actor_name=event.actor_name,
                          operation=event.operation, event=event.event, result=event.result,
                          key_id=event.key_id, pep_id=event.pep_id, message=event.message)
