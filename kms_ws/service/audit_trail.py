"""Which audit events an operation produces and where they go (§5.4).

Mandatory events (always recorded locally): every change (write operations), every key
delivery, every denial or failure of an authenticated request, every pushed audit
message. Enforcing audit policies add other operations and choose syslog."""

from __future__ import annotations

from collections.abc import Sequence
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
from .ports import UnitOfWork
from .ws_messages import TransferResult


def enforcing_policies(uow: UnitOfWork) -> list[audit_policy.AuditPolicy]:
    return [policy_of(o.object_id, o.body) for o in
            uow.objects.list_objects("AuditPolicy", None, limit=100, states=["Enforcing"])]


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


def record(events: Sequence[AuditEvent], uow: UnitOfWork, mandatory: bool,
           policies: Sequence[audit_policy.AuditPolicy], local_done: bool = False
           ) -> list[AuditEvent]:
    """Record events locally as the policies say; return those due for syslog."""
    to_syslog, local = [], []
    for ev in events:
        dest = audit_policy.destinations(policies, ev.operation, mandatory)
        if (mandatory or "Local" in dest) and not local_done:
            local.append(ev)
        if "Syslog" in dest:
            to_syslog.append(ev)
    if local:
        emit_all(local, uow.audit)
    return to_syslog


def send(sink: SyslogSink | None, events: Sequence[AuditEvent]) -> None:
    if sink is not None:
        for ev in events:
            sink.send(ev)


# The id field of each administered kind (also the WS-Transfer selector name).
ID_FIELDS = {"Key": "KeyId", "KeyTemplate": "TemplateId", "EndpointType": "EndpointTypeId",
       "Realm": "RealmId", "Pep": "PepId", "Client": "ClientId", "ClientGroup": "GroupId",
       "KeyGroup": "GroupId"}
for _k in ("KeyAssignmentPolicy", "RetentionPolicy", "WrappingPolicy", "AuditPolicy",
           "AccessDistributionPolicy", "CachingPolicy"):
    ID_FIELDS[_k] = "PolicyId"
