"""WS-Eventing (2004/08) with the DSP0226 delivery modes: Subscribe (Push or PushWithAck to
a NotifyTo EPR, SubscriptionEnd to an optional EndTo EPR; a GetUpdateList filter says what
to be told about), Renew, Unsubscribe.
The subscription is named by the wse:Identifier reference parameter, echoed as a header."""

from __future__ import annotations

from lxml import etree

from ..codec import kms
from ..domain.errors import InvalidSubscription, SchemaValidationError
from ..security.xml import child_text
from ..service.ws_messages import (
    DeliveryMode,
    SubscribeRequest,
    SubscriptionRequest,
    SubscriptionResult,
)
from ..xmlns import ANONYMOUS, WSA, WSE, WSMAN
from .call import WsCall, WsReply, epr, expiration
from .enumeration import parse_filter

ACTIONS = {verb: f"{WSE}/{verb}" for verb in ("Subscribe", "Renew", "Unsubscribe")}
PUSH = f"{WSE}/DeliveryModes/Push"
DELIVERY_MODES = {PUSH: DeliveryMode.PUSH,
                  WSMAN.rsplit(".xsd", 1)[0] + "/PushWithAck": DeliveryMode.PUSH_WITH_ACK}
_E = f"{{{WSE}}}"


def subscribe(call: WsCall) -> WsReply:
    body = call.payload
    assert body is not None  # schema-validated wse:Subscribe
    delivery = body.find(_E + "Delivery")
    notify_to = child_text(delivery, f"{_E}NotifyTo/{{{WSA}}}Address") if delivery is not None \
        else None
    if delivery is None or not notify_to:
        raise SchemaValidationError("Subscribe needs wse:Delivery with a wse:NotifyTo address")
    end_to = body.find(_E + "EndTo")
    end_address = (child_text(end_to, f"{{{WSA}}}Address") or "").strip() \
        if end_to is not None else None
    if end_to is not None and not end_address:
        raise SchemaValidationError("wse:EndTo needs a wsa:Address")
    seconds, at = expiration(body.find(_E + "Expires"))
    result: SubscriptionResult = call.run("Eventing.Subscribe", SubscribeRequest(
        notify_to.strip(), _mode(delivery.get("Mode") or PUSH),
        parse_filter(body, _E + "Filter"), seconds, at, end_address, ACTIONS["Subscribe"]))
    out = etree.Element(_E + "SubscribeResponse", nsmap={"wse": WSE, "wsa": WSA})
    ident = etree.Element(_E + "Identifier")
    ident.text = result.subscription_id
    epr(out, _E + "SubscriptionManager", call.addr.to or ANONYMOUS,
        call.headers.resource_uri, None, [ident])
    etree.SubElement(out, _E + "Expires").text = kms.format_time(result.expires)
    return WsReply(ACTIONS["Subscribe"] + "Response", [out])


def renew(call: WsCall) -> WsReply:
    body = call.payload
    seconds, at = expiration(body.find(_E + "Expires") if body is not None else None)
    result: SubscriptionResult = call.run("Eventing.Renew", SubscriptionRequest(
        _identifier(call), seconds, at))
    out = etree.Element(_E + "RenewResponse", nsmap={"wse": WSE})
    etree.SubElement(out, _E + "Expires").text = kms.format_time(result.expires)
    return WsReply(ACTIONS["Renew"] + "Response", [out])


def unsubscribe(call: WsCall) -> WsReply:
    call.run("Eventing.Unsubscribe", SubscriptionRequest(_identifier(call)))
    return WsReply(ACTIONS["Unsubscribe"] + "Response")


def _identifier(call: WsCall) -> str:
    if not call.headers.identifier:
        raise InvalidSubscription("the request names no subscription (wse:Identifier header)")
    return call.headers.identifier


def _mode(uri: str) -> DeliveryMode | str:
    """The delivery mode a wse:Delivery/@Mode names; one we do not know, as given (the
    service refuses it by name)."""
    return DELIVERY_MODES.get(uri, uri)
