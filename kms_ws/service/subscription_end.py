"""WS-Eventing SubscriptionEnd: the server ends a subscription it can no longer serve.

A subscription is served while its client exists and is Active, still has the Read right
in at least one realm it had it in when it subscribed, and (scoped to a PEP) that PEP
exists and is still served by the client. When that stops — the client is deleted,
disabled or locked, loses Read there, the PEP goes or is disassociated — or an
administrator removes the subscription, it expires, or delivery gives up, the
subscription and its pending notifications are removed in that same transaction and a
SubscriptionEnd is queued for its wse:EndTo (none given: none sent, as WS-Eventing says).
The deliverer sends it (kms_ws.wsman.delivery).

Status: SourceCancelling when the server ends it; DeliveryFailure when delivery gave up.
SourceShuttingDown is never sent: subscriptions and pending notifications are stored
and outlive a server restart."""

from __future__ import annotations

import enum
from datetime import datetime

from ..domain.model import ClientState, Endpoint
from ..domain.realms import Right, allows, realms_with
from ..domain.records import Subscription
from .ports import UnitOfWork


class EndStatus(enum.Enum):
    """Why a subscription ended (WS-Eventing's SubscriptionEnd statuses; their URIs:
    kms_ws.wsman.delivery). Stored by name with the queued SubscriptionEnd."""

    SOURCE_CANCELLING = "SourceCancelling"
    DELIVERY_FAILURE = "DeliveryFailure"
    SOURCE_SHUTTING_DOWN = "SourceShuttingDown"


def end(uow: UnitOfWork, sub: Subscription, reason: str, now: datetime,
        status: EndStatus = EndStatus.SOURCE_CANCELLING) -> None:
    uow.subscriptions.end_subscription(sub, status.value, reason, now)


def review(uow: UnitOfWork, endpoint_id: str, now: datetime) -> int:
    """End the endpoint's subscriptions that can no longer be served; returns how many.
    Called in the transaction that changed the endpoint, its rights or its PEPs."""
    ep = uow.endpoints.get_endpoint(endpoint_id)
    ended = 0
    for sub in uow.subscriptions.subscriptions_of(endpoint_id):
        reason = unservable(uow, ep, sub)
        if reason is not None:
            end(uow, sub, reason, now)
            ended += 1
    return ended


def end_all(uow: UnitOfWork, subs: list[Subscription], reason: str, now: datetime) -> None:
    for sub in subs:
        end(uow, sub, reason, now)


def endpoint_deleted(uow: UnitOfWork, ep: Endpoint, now: datetime) -> None:
    """Before the endpoint's row goes (its subscriptions would go with it, unannounced)."""
    if ep.kind.value == "Client":
        end_all(uow, uow.subscriptions.subscriptions_of(ep.endpoint_id),
                "the subscriber's client was deleted", now)
    else:
        end_all(uow, uow.subscriptions.subscriptions_of(pep_id=ep.endpoint_id),
                f"PEP {ep.endpoint_id}, the scope of the subscription, was deleted", now)


def unservable(uow: UnitOfWork, ep: Endpoint | None, sub: Subscription) -> str | None:
    """Why the subscription can no longer be served, or None."""
    if ep is None:
        return "the subscriber's client was deleted"
    if ep.state not in (ClientState.ACTIVE, ClientState.AUTHENTICATED):
        return f"the subscriber's client is {ep.state.value}"
    realms = sub.realms or realms_with(ep.grants, Right.READ)  # before schema 9: any realm
    if not any(allows(ep.grants, (r,), Right.READ) for r in realms):
        return ("the subscriber's client no longer has the Read right in the realms it "
                "subscribed under: " + ", ".join(sub.realms or ("any realm",)))
    if sub.pep_id is not None and not ep.is_admin:
        pep = uow.endpoints.get_endpoint(sub.pep_id)
        if pep is None:
            return f"PEP {sub.pep_id}, the scope of the subscription, was deleted"
        if pep.owner_id != ep.endpoint_id and not uow.objects.is_associated(
                "Pep", pep.endpoint_id, "Client", ep.endpoint_id):
            return f"PEP {sub.pep_id} is no longer associated with the subscriber's client"
    return None
