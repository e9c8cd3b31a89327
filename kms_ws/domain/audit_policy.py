"""§5.4 audit policy: which operations are recorded, as which event type, where.

Mandatory: event type Log; destinations Local and Syslog. Key deliveries, denials,
administrative changes and pushed audit messages are ALWAYS recorded locally (the audit
trail a KMS cannot do without); audit policies add operations (e.g. reads such as
GetServerCapabilities) and send to syslog. With no enforcing audit policy every event
goes to every configured destination.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .errors import InvalidParameter

EVENT_TYPES = ("Log", "SnmpTrap")
DESTINATIONS = ("Local", "Syslog", "Snmp")
SUPPORTED_DESTINATIONS = ("Local", "Syslog")
ANY_OPERATION = "*"


@dataclass(frozen=True)
class AuditPolicy:
    policy_id: str
    operations: frozenset[str]
    event_types: frozenset[str]
    destinations: frozenset[str]


def check_policy(p: AuditPolicy) -> None:
    if "Log" not in p.event_types:
        raise InvalidParameter("an audit policy includes the mandatory event type Log",
                               supported=("Log",))
    if p.event_types - {"Log"}:
        raise InvalidParameter("only the event type Log is supported", supported=("Log",))
    unsupported = p.destinations - set(SUPPORTED_DESTINATIONS)
    if unsupported:
        raise InvalidParameter(f"unsupported destination {', '.join(sorted(unsupported))}",
                               supported=SUPPORTED_DESTINATIONS)


def destinations(policies: Iterable[AuditPolicy], operation: str,
                 mandatory: bool) -> frozenset[str]:
    """Where an event of `operation` goes under the enforcing policies."""
    policies = list(policies)
    if not policies:
        return frozenset(SUPPORTED_DESTINATIONS)
    out: set[str] = {"Local"} if mandatory else set()
    for p in policies:
        if operation in p.operations or ANY_OPERATION in p.operations:
            out |= p.destinations
    return frozenset(out)
