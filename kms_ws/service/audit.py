"""§6.8 PushAuditMessage: one or a batch of messages from a client or PEP, stored — within
the client's quota.

Quota: per calling client and per minute (fixed minutes of the server's clock), at most
`push_audit_messages_per_minute` messages and `push_audit_bytes_per_minute` bytes (UTF-8
of each message's Event and Message); 0 turns a bound off. The use is a row in the store,
counted in the call's own write transaction, so every worker and every node sharing the
store counts against the same quota. A call that would exceed it is refused whole
(`wsman:QuotaLimit`, E_AUDIT_QUOTA_EXCEEDED): nothing of it is stored. The first refusal
of a client in a minute is an audit record of its own; the ones after it in that minute
are counted, and the count is one audit record when that client's next call opens a new
minute — so a client hammering past its quota costs a record a minute, not one a call."""

from __future__ import annotations

from datetime import datetime, timedelta

from ..domain.errors import AuditQuotaExceeded, KeyNotFound, NotFound, PermissionDenied
from ..domain.model import AuditMessage, Endpoint, EndpointKind
from ..domain.realms import Right, realms_with
from ..domain.records import QuotaUse
from .admin.endpoints import pep_serves
from .context import RequestContext
from .messages import PushAuditMessageRequest, PushAuditMessageResult
from .ports import UnitOfWork

QUOTA_WINDOW = timedelta(minutes=1)


def push_audit_message(ctx: RequestContext, req: PushAuditMessageRequest) -> PushAuditMessageResult:
    caller = ctx.caller
    assert caller is not None
    _charge(ctx, caller, req.messages)
    for msg in req.messages:
        if msg.key_id is not None:
            found = ctx.uow.keys.get_key(msg.key_id)
            if found is None or not set(found[0].realms) & set(
                    realms_with(caller.grants, Right.REFERENCE)):
                raise KeyNotFound(f"no key {msg.key_id}")
        if msg.pep_id is not None:
            pep = ctx.uow.endpoints.get_endpoint(msg.pep_id)
            if pep is None or pep.kind is not EndpointKind.PEP:
                raise NotFound(f"no PEP {msg.pep_id}")
            if not pep_serves(ctx, pep, caller):
                raise PermissionDenied(f"client {caller.name} is not associated with PEP "
                                       f"{msg.pep_id}")
    ctx.uow.audit.insert_audit_messages(caller, req.messages, ctx.now)
    return PushAuditMessageResult(len(req.messages))


def window_of(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


def message_bytes(msgs: tuple[AuditMessage, ...]) -> int:
    return sum(len(m.event.encode("utf-8")) + len((m.message or "").encode("utf-8"))
               for m in msgs)


def _charge(ctx: RequestContext, caller: Endpoint, msgs: tuple[AuditMessage, ...]) -> None:
    """Count the call against the caller's quota, or refuse it (AuditQuotaExceeded)."""
    s, window = ctx.settings, window_of(ctx.now)
    use = _in_window(ctx.uow, caller, window, ctx.now)
    messages, size = use.messages + len(msgs), use.bytes + message_bytes(msgs)
    over = []
    if s.push_audit_messages_per_minute and messages > s.push_audit_messages_per_minute:
        over.append(f"{s.push_audit_messages_per_minute} messages")
    if s.push_audit_bytes_per_minute and size > s.push_audit_bytes_per_minute:
        over.append(f"{s.push_audit_bytes_per_minute} bytes")
    if over:
        raise AuditQuotaExceeded(
            f"PushAuditMessage quota exceeded: at most {' and '.join(over)} per minute per "
            f"client ({use.messages} messages, {use.bytes} bytes already this minute); "
            f"nothing was stored; retry after {(window + QUOTA_WINDOW):%H:%M:%S}Z", window)
    ctx.uow.audit.set_audit_quota(caller.endpoint_id, QuotaUse(window, messages, size,
                                                               use.refused))


def refusal_recorded(uow: UnitOfWork, caller: Endpoint, exc: AuditQuotaExceeded,
                     now: datetime) -> bool:
    """Count a refused call (in the refusal's own transaction); True when it is the
    client's first refusal this minute, which is recorded in full."""
    window = exc.window if isinstance(exc.window, datetime) else window_of(now)
    use = _in_window(uow, caller, window, now)
    uow.audit.set_audit_quota(caller.endpoint_id, QuotaUse(window, use.messages, use.bytes,
                                                           use.refused + 1))
    return use.refused == 0


def _in_window(uow: UnitOfWork, caller: Endpoint, window: datetime,
               now: datetime) -> QuotaUse:
    """The caller's use in `window`; an older minute's refusals beyond its first become
    one audit record now."""
    use = uow.audit.audit_quota(caller.endpoint_id)
    if use is not None and use.window_start == window:
        return use
    if use is not None and use.refused > 1:
        uow.audit.insert_audit(at=now, actor_id=caller.endpoint_id, actor_name=caller.name,
                               operation="PushAuditMessage", event=AuditQuotaExceeded.error_code,
                               result="Denied", message=(
                              f"{use.refused} calls were refused by the PushAuditMessage "
                              f"quota in the minute from {use.window_start:%Y-%m-%dT%H:%M}Z "
                              "(the first one is recorded on its own)"))
    return QuotaUse(window, 0, 0, 0)
