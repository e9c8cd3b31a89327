"""§6.8 PushAuditMessage: one or a batch of messages from a client or PEP, stored."""

from __future__ import annotations

from ..domain.errors import KeyNotFound, NotFound, PermissionDenied
from ..domain.model import EndpointKind
from ..domain.realms import Right, realms_with
from .admin.endpoints import pep_serves
from .context import RequestContext
from .messages import PushAuditMessageRequest, PushAuditMessageResult


def push_audit_message(ctx: RequestContext, req: PushAuditMessageRequest) -> PushAuditMessageResult:
    caller = ctx.caller
    assert caller is not None
    for msg in req.messages:
        if msg.key_id is not None:
            found = ctx.repo.get_key(msg.key_id)
            if found is None or not set(found[0].realms) & set(
                    realms_with(caller.grants, Right.REFERENCE)):
                raise KeyNotFound(f"no key {msg.key_id}")
        if msg.pep_id is not None:
            pep = ctx.repo.get_endpoint(msg.pep_id)
            if pep is None or pep.kind is not EndpointKind.PEP:
                raise NotFound(f"no PEP {msg.pep_id}")
            if not pep_serves(ctx, pep, caller):
                raise PermissionDenied(f"client {caller.name} is not associated with PEP "
                                       f"{msg.pep_id}")
    ctx.repo.insert_audit_messages(caller, req.messages, ctx.now)
    return PushAuditMessageResult(len(req.messages))
