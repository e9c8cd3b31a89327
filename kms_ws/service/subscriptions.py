"""WS-Eventing subscriptions to §6.11 UpdatePending, and the decisions around them: which
subscriptions a key change concerns, when a notification is acknowledged, and the backoff
between delivery attempts. Delivery itself (HTTP) is kms_ws.wsman.delivery."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta

from ..domain.errors import (
    DeliveryModeRequestedUnavailable,
    EventingInvalidExpirationTime,
    InternalError,
    InvalidSubscription,
    PermissionDenied,
)
from ..domain.realms import Right, realms_with
from ..domain.records import Subscription
from . import notify_to, subscription_end
from .context import RequestContext
from .keys import _caller
from .update_list import _check_filter
from .ws_messages import (
    DeliveryMode,
    EndpointStatus,
    EndpointStatusRequest,
    SubscribeRequest,
    SubscriptionRequest,
    SubscriptionResult,
)

DEFAULT_EXPIRY = timedelta(hours=1)
MAX_EXPIRY = timedelta(days=30)


def subscribe(ctx: RequestContext, req: SubscribeRequest) -> SubscriptionResult:
    caller = _caller(ctx)
    if not isinstance(req.mode, DeliveryMode):
        raise DeliveryModeRequestedUnavailable(f"delivery mode {req.mode} is not supported; "
                                               f"use Push or PushWithAck")
    notify_to.check(req.notify_to, ctx.transport.remote_addr, ctx.settings.notify_to_networks)
    if req.end_to is not None:
        notify_to.check(req.end_to, ctx.transport.remote_addr,
                        ctx.settings.notify_to_networks, "EndTo")
    bound = (("UpdateType", req.filter.type), ("NotifyTo", req.notify_to)) + \
        ((("EndTo", req.end_to),) if req.end_to is not None else ())
    _check_filter(ctx, caller, req.filter, req.action, bound)
    realms = realms_with(caller.grants, Right.READ)
    if not realms:
        raise PermissionDenied("only a client with the Read right in some realm is told "
                               "about changes")
    expires = _expiry(ctx.now, req.expires_seconds, req.expires_at)
    sub = Subscription(f"uuid:{uuid.uuid4()}", caller.endpoint_id, req.notify_to, req.mode.value,
                       req.filter.type, req.filter.pep_id, expires,
                       ctx.transport.remote_addr, req.end_to, realms)
    ctx.uow.subscriptions.insert_subscription(sub, ctx.now)
    return SubscriptionResult(sub.subscription_id, expires)


def renew(ctx: RequestContext, req: SubscriptionRequest) -> SubscriptionResult:
    sub = _own(ctx, req.subscription_id)
    expires = _expiry(ctx.now, req.expires_seconds, req.expires_at)
    ctx.uow.subscriptions.renew_subscription(sub.subscription_id, expires)
    return SubscriptionResult(sub.subscription_id, expires)


def unsubscribe(ctx: RequestContext, req: SubscriptionRequest) -> SubscriptionResult:
    """The subscriber's own Unsubscribe ends it quietly; an administrator removing someone
    else's subscription ends it with SubscriptionEnd (SourceCancelling) to its EndTo."""
    sub = _own(ctx, req.subscription_id)
    assert ctx.caller is not None
    if sub.endpoint_id == ctx.caller.endpoint_id:
        ctx.uow.subscriptions.delete_subscription(sub.subscription_id)
    else:
        subscription_end.end(ctx.uow, sub, f"an administrator ({ctx.caller.name}) removed "
                             "the subscription", ctx.now)
    return SubscriptionResult(sub.subscription_id, ctx.now)


def endpoint_status(ctx: RequestContext, req: EndpointStatusRequest) -> EndpointStatus:
    """§6.10 for administrators: the server asks a subscribed endpoint for its status."""
    caller = _caller(ctx)
    if not caller.is_admin:
        raise PermissionDenied("only an administrator asks endpoints for their status")
    sub = _own(ctx, req.subscription_id)
    if ctx.outbound is None:
        raise InternalError("this server cannot call client endpoints")
    status: EndpointStatus = ctx.outbound.get_status(sub, req)
    return replace(status, endpoint_id=status.endpoint_id or sub.endpoint_id)


def next_attempt(now: datetime, attempts: int, initial: float, maximum: float) -> datetime:
    """Exponential backoff: initial, 2x, 4x ... capped at maximum seconds."""
    return now + timedelta(seconds=min(initial * (2 ** max(attempts - 1, 0)), maximum))


def _own(ctx: RequestContext, subscription_id: str | None) -> Subscription:
    caller = _caller(ctx)
    sub = ctx.uow.subscriptions.get_subscription(subscription_id or "")
    if sub is None or sub.expires <= ctx.now or \
            (sub.endpoint_id != caller.endpoint_id and not caller.is_admin):
        raise InvalidSubscription(f"no live subscription {subscription_id}")
    return sub


def _expiry(now: datetime, seconds: float | None, at: datetime | None) -> datetime:
    if at is None and seconds is None:
        return now + DEFAULT_EXPIRY
    delta = (at - now) if at is not None else timedelta(seconds=seconds or 0)
    if delta <= timedelta(0) or delta > MAX_EXPIRY:
        raise EventingInvalidExpirationTime(
            f"a subscription expires between now and {MAX_EXPIRY.days} days from now")
    return now + delta
