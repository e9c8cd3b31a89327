"""§5.4 audit policy: which operations are recorded, as which event type, where.

Mandatory: event type Log; destinations Local and Syslog. Key deliveries, denials,
administrative changes and pushed audit messages are ALWAYS recorded locally (the audit
trail a KMS cannot do without); changes (create, store, delete, state changes) and
authentication failures ALWAYS go to both destinations, whatever a policy lists. Audit
policies add operations (e.g. reads such as GetServerCapabilities) and destinations.

Several policies may apply to one event (server-wide ones, and those of the key it
touches, the key's groups, the calling client and the client's groups): they combine by
union — an event goes to every destination of every applicable policy that lists its
operation (or `*`). None can take a mandatory record away. With no applicable policy, an
event goes to syslog, and locally when it is mandatory; once policies apply to it, they
decide the rest: an operation none of them lists is recorded only where it must be (so a
policy on a key listing only CreateKey stops that key's deliveries going to syslog).
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
                 mandatory: bool, always: bool = False) -> frozenset[str]:
    """Where an event of `operation` goes under the policies that apply to it (union).
    `mandatory`: always recorded locally; `always`: a change or an authentication
    failure, recorded locally and sent to syslog whatever the policies list."""
    if always:
        return frozenset(SUPPORTED_DESTINATIONS)
    policies = list(policies)
    out: set[str] = {"Local"} if mandatory else set()
    if not policies:
        return frozenset(out | {"Syslog"})
    for p in policies:
        if operation in p.operations or ANY_OPERATION in p.operations:
            out |= p.destinations
    return frozenset(out)
