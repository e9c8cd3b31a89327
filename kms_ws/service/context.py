"""Per-request state: who is calling, the unit of work, the time, the request id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..crypto.master_key import MasterKey
from ..domain.model import Endpoint
from ..security.settings import SecuritySettings
from ..store.repository import Repository


@dataclass
class RequestContext:
    caller: Endpoint | None
    repo: Repository
    now: datetime
    request_id: str
    settings: SecuritySettings
    master: MasterKey
    outbound: Any = None  # calls to client endpoints (§6.10 GetStatus); kms_ws.wsman.delivery
    # Writes that record a read (delivery use tracking): run after the handler, in the
    # same write transaction, or in a short one of their own after a read transaction.
    deferred: list[Callable[[Repository], None]] = field(default_factory=list)

    def defer(self, write: Callable[[Repository], None]) -> None:
        self.deferred.append(write)
