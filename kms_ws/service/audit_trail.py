"""Which audit events an operation produces and where they go (§5.4).

Mandatory events (always recorded locally): every change (write operations), every key
delivery, every denial or failure of an authenticated request, every pushed audit
message. Changes and authentication failures also always go to syslog. Enforcing audit
policies add other operations and destinations: a policy associated with a realm applies
to every event of the server; one associated with a key, a key group, a client or a
client group applies to the events that touch the key (or a key of the group) or are
made by the client (or a client of the group). The policies that apply to an event
combine by union (domain.audit_policy.destinations)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..audit.events import AuditEvent, emit_all
from ..audit.syslog import SyslogSink
from ..domain import audit_policy
from ..domain.errors import KmsError
from ..domain.model import Endpoint, Key
from .admin.decoders import audit_policy as policy_of
from .admin.messages import AdminRequest, AdminResult
from .messages import GetKeyResult, KeyResult, PushAuditMessageRequest, StoreKeyResult
from .policies import client_in_group, key_in_group
from .ports import UnitOfWork
from .ws_messages import TransferResult

# What an audit policy can be associated with: a realm (the policy then applies to every
# event of the server), or the keys and clients whose events it watches.
SCOPES = ("Realm", "Key", "KeyGroup", "Client", "ClientGroup")

# Operations that change something: their events (success or refusal) always go to the
# audit table AND to syslog, whatever the audit policies list (§5.4: a policy adds,
# never takes away). With the events below: a key made by a key-assignment policy, a
# client locked, a replay, a key's state changed by its dates, and every refusal before
# authentication (authentication failures, aggregated; service.refusals).
CHANGES = frozenset({
    "RegisterEndpoint", "RegisterWrappingValues", "CreateKey", "StoreKey", "AdminCreate",
    "AdminEdit", "AdminDelete", "AdminAssociate", "AdminDisassociate", "Transfer.Create",
    "Transfer.Put", "Transfer.Delete"})
ALWAYS_EVENTS = frozenset({"KeyCreated", "ClientLocked", "Replay",
                           "KeyExpired", "KeyDisabled"})  # dates passing: service.key_dates


@dataclass(frozen=True)
class InForce:
    """The Enforcing audit policies, by what they are associated with."""

    everywhere: tuple[audit_policy.AuditPolicy, ...] = ()
    # target kind -> target id -> policies
    scoped: dict[str, dict[str, list[audit_policy.AuditPolicy]]] = field(default_factory=dict)

    def applicable(self, uow: UnitOfWork, ev: AuditEvent) -> list[audit_policy.AuditPolicy]:
        """The policies that apply to one event: server-wide ones, those of the key it
        touches and of that key's groups, those of its actor and the actor's groups."""
        found = list(self.everywhere)
        if ev.key_id is not None:
            found += self.scoped.get("Key", {}).get(ev.key_id, [])
            for gid, policies in self.scoped.get("KeyGroup", {}).items():
                if key_in_group(uow, ev.key_id, gid):
                    found += policies
        if ev.actor_id is not None:
            found += self.scoped.get("Client", {}).get(ev.actor_id, [])
            groups = self.scoped.get("ClientGroup", {})
            actor = uow.endpoints.get_endpoint(ev.actor_id) if groups else None
            for gid, policies in groups.items():
                if actor is not None and client_in_group(uow, actor, gid):
                    found += policies
        return found


def in_force(uow: UnitOfWork) -> InForce:
    everywhere: dict[str, audit_policy.AuditPolicy] = {}
    scoped: dict[str, dict[str, list[audit_policy.AuditPolicy]]] = {}
    for kind in SCOPES:
        for obj, target_id in uow.objects.enforcing_targets("AuditPolicy", kind):
            policy = policy_of(obj.object_id, obj.body)
            if kind == "Realm":
                everywhere[obj.object_id] = policy
            else:
                scoped.setdefault(kind, {}).setdefault(target_id, []).append(policy)
    return InForce(tuple(everywhere.values()), scoped)


@dataclass(frozen=True)
class Routed:
    """An audit event and where it goes."""

    event: AuditEvent
    local: bool
    syslog: bool


def always(ev: AuditEvent) -> bool:
    """A change or an authentication failure: to every destination, whatever policies say."""
    return ev.operation in CHANGES or ev.event in ALWAYS_EVENTS


def route(uow: UnitOfWork, events: Sequence[AuditEvent], mandatory: bool,
          unauthenticated: bool = False) -> list[Routed]:
    """Where each event goes under the policies in force (read in `uow`). `mandatory`:
    recorded locally whatever the policies say; `unauthenticated`: refusals before the
    caller was known (authentication failures), which go everywhere."""
    if not events:
        return []
    policies = in_force(uow)
    out = []
    for ev in events:
        dest = audit_policy.destinations(policies.applicable(uow, ev), ev.operation,
                                         mandatory, unauthenticated or always(ev))
        out.append(Routed(ev, "Local" in dest, "Syslog" in dest))
    return out


def success_events(name: str, caller: Endpoint, now: datetime, request: Any,
                   result: Any) -> list[AuditEvent]:
    who = (caller.endpoint_id, caller.name)
    if isinstance(result, GetKeyResult):
        pep_id = getattr(request, "pep_id", None)
        created = [AuditEvent(now, name, "KeyCreated", "Success", *who, key_id=k.key_id,
                              message=f"by key-assignment policy {k.assignment_policy_id}")
                   for k in result.keys if k.created_at == now and k.assignment_policy_id]
        return created + [AuditEvent(now, name, "KeyDelivered" if k.blob is not None
                                     else "KeyMetadata", "Success", *who, key_id=k.key_id,
                                     pep_id=pep_id, message=wrapping_note(k))
                          for k in result.keys]
    if isinstance(result, TransferResult) and isinstance(result.object, Key):
        k = result.object
        return [AuditEvent(now, name, "KeyDelivered" if k.blob is not None else "KeyMetadata",
                           "Success", *who, key_id=k.key_id, message=wrapping_note(k))]
    if isinstance(request, PushAuditMessageRequest):
        return [AuditEvent(m.time or now, name, m.event, "Reported", *who, key_id=m.key_id,
                           pep_id=m.pep_id, message=m.message) for m in request.messages]
    key_id, message = None, None
    if isinstance(result, KeyResult):
        key_id = result.key.key_id
    elif isinstance(result, StoreKeyResult):
        key_id = result.key_id
    elif isinstance(result, AdminResult) and isinstance(request, AdminRequest):
        ids = [d.get(ID_FIELDS.get(result.kind, ""), "") for d in result.documents]
        target = f" -> {request.target.kind} {request.target.object_id}" if request.target \
            else ""
        message = f"{result.kind} {request.object_id or ', '.join(map(str, ids))}{target}"
        if result.kind == "Key":
            key_id = request.object_id or (str(ids[0]) if ids else None)
    return [AuditEvent(now, name, name, "Success", *who, key_id=key_id,
                       pep_id=getattr(request, "pep_id", None), message=message)]


def wrapping_note(key: Key) -> str | None:
    """Which wrapping a delivery got (types and wrapping key ids; never key material)."""
    b = key.blob
    if b is None:
        return None
    note = f"wrapping {b.wrapping_type}" + (f" for {b.wrapping_key_id}" if b.wrapping_key_id
                                           else "")
    if b.inner_wrapping_type:
        note += f", inner {b.inner_wrapping_type} for PEP key {b.inner_wrapping_key_id}"
    return note


def failure_event(name: str, caller: Endpoint | None, now: datetime, request: Any,
                  exc: KmsError) -> AuditEvent:
    result = "Denied" if exc.refusal else "Failed"
    return AuditEvent(now, name, exc.error_code, result,
                      caller.endpoint_id if caller else None, caller.name if caller else None,
                      key_id=getattr(request, "key_id", None),
                      pep_id=getattr(request, "pep_id", None), message=exc.reason)


def record(routed: Sequence[Routed], uow: UnitOfWork) -> None:
    """Write the events due locally to the audit table (and log) of `uow`."""
    local = [r.event for r in routed if r.local]
    if local:
        emit_all(local, uow.audit)


def record_routed(events: Sequence[AuditEvent], uow: UnitOfWork, mandatory: bool,
                  unauthenticated: bool = False) -> list[Routed]:
    """Route the events and record those due locally, in one unit of work."""
    routed = route(uow, events, mandatory, unauthenticated)
    record(routed, uow)
    return routed


def send(sink: SyslogSink | None, routed: Sequence[Routed]) -> None:
    if sink is not None:
        for r in routed:
            if r.syslog:
                sink.send(r.event)


# The id field of each administered kind (also the WS-Transfer selector name).
ID_FIELDS = {"Key": "KeyId", "KeyTemplate": "TemplateId", "EndpointType": "EndpointTypeId",
       "Realm": "RealmId", "Pep": "PepId", "Client": "ClientId", "ClientGroup": "GroupId",
       "KeyGroup": "GroupId"}
for _k in ("KeyAssignmentPolicy", "RetentionPolicy", "WrappingPolicy", "AuditPolicy",
           "AccessDistributionPolicy", "CachingPolicy"):
    ID_FIELDS[_k] = "PolicyId"
ID_FIELDS["EndpointTypeRule"] = "RuleId"
