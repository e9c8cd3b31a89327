"""Server-initiated calls to the KMS Client Service (wsdl/kms-client.wsdl): §6.11
UpdatePending and §6.10 GetStatus, posted to a subscription's NotifyTo address; and the
delivery loop that repeats UpdatePending with backoff until the subscriber acknowledges.

The loop runs in one small process per server (`kms-ws deliver`, started and stopped by
`kms-ws serve`): pending notifications are rows in the store, so it can restart (or run
on another node) at any time without losing one."""

from __future__ import annotations

import logging
import os
import threading
import uuid

import requests
from lxml import etree

from ..config import Config
from ..domain.errors import EndpointUnreachable, KmsError, NotifyToRefused
from ..security import xml as secure_xml
from ..service import notify_to, subscriptions
from ..service.dispatch import utcnow
from ..service.ws_messages import EndpointStatus, EndpointStatusRequest
from ..store.engine import Database
from ..store.repository import Repository
from ..store.updates import Pending, Subscription
from ..xmlns import ANONYMOUS, KMS, SOAP, WSA, WSE, action
from .call import epr

log = logging.getLogger("kms_ws.delivery")
_K, _S, _E = "{%s}" % KMS, "{%s}" % SOAP, "{%s}" % WSE
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
CT = "application/soap+xml;charset=UTF-8"


def request_envelope(to: str, action_uri: str, payload: etree._Element) -> bytes:
    env = etree.Element(_S + "Envelope", nsmap={"s": SOAP, "wsa": WSA, "kms": KMS})
    header = etree.SubElement(env, _S + "Header")
    for name, text in (("To", to), ("Action", action_uri),
                       ("MessageID", f"uuid:{uuid.uuid4()}")):
        etree.SubElement(header, f"{{{WSA}}}{name}").text = text
    reply = etree.SubElement(header, f"{{{WSA}}}ReplyTo")
    etree.SubElement(reply, f"{{{WSA}}}Address").text = ANONYMOUS
    etree.SubElement(env, _S + "Body").append(payload)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def update_pending_payload(sub: Subscription, token: int) -> etree._Element:
    el = etree.Element(_K + "UpdatePending", nsmap={"kms": KMS})
    etree.SubElement(el, _K + "Type").text = sub.update_type
    scope = etree.SubElement(el, _K + "Scope")
    if sub.pep_id:
        etree.SubElement(scope, _K + "PepId").text = sub.pep_id
    else:
        etree.SubElement(scope, _K + "ClientId").text = sub.endpoint_id
    tokens = etree.SubElement(el, _K + "UpdateVersioningTokens")
    etree.SubElement(tokens, _K + "Token", Type=sub.update_type).text = str(token)
    return el


class ClientServiceCaller:
    """Posts KMS Client Service requests; returns the response Body's first element once
    it is valid against the message schema (what an endpoint says is relayed to
    administrators only if well-formed and valid)."""

    def __init__(self, config: Config, validator: etree.XMLSchema) -> None:
        self.config = config
        self.validator = validator
        self._http = requests.Session()

    def _post(self, sub: Subscription, operation: str, payload: etree._Element) -> etree._Element:
        # Re-checked before every call: the administrator may have narrowed the networks,
        # and a host name may resolve elsewhere now.
        notify_to.check(sub.notify_to, sub.origin, self.config.security.notify_to_networks)
        try:
            r = self._http.post(sub.notify_to, data=request_envelope(
                sub.notify_to, action(operation), payload),
                                headers={"Content-Type": CT}, allow_redirects=False,
                                timeout=self.config.notify_timeout_seconds)
        except requests.RequestException as exc:
            raise EndpointUnreachable(f"{sub.notify_to}: {type(exc).__name__}") from None
        if r.status_code != 200:
            raise EndpointUnreachable(f"{sub.notify_to} answered HTTP {r.status_code}")
        try:
            root = secure_xml.parse(r.content, self.config.security)
        except KmsError:
            raise EndpointUnreachable(f"{sub.notify_to} answered with bad XML") from None
        body = root.find(_S + "Body")
        first = next((c for c in body if isinstance(c.tag, str)), None) \
            if body is not None else None
        if first is None or first.tag != _K + operation + "Response" or \
                not self.validator.validate(first):
            raise EndpointUnreachable(f"{sub.notify_to} did not answer {operation} validly")
        return first

    def update_pending(self, sub: Subscription, token: int) -> int | None:
        """The token the client says it has reached, or None."""
        res = self._post(sub, "UpdatePending", update_pending_payload(sub, token))
        got = [int(t.text or 0) for t in res.iterfind(f"{_K}UpdateVersioningTokens/{_K}Token")
               if t.get("Type") == sub.update_type]
        return max(got) if got else None

    def subscription_end(self, sub: Subscription, reason: str) -> None:
        """WS-Eventing SubscriptionEnd (one-way, one attempt) to the NotifyTo address: the
        server ended the subscription (status SourceCancelling)."""
        notify_to.check(sub.notify_to, sub.origin, self.config.security.notify_to_networks)
        el = etree.Element(_E + "SubscriptionEnd", nsmap={"wse": WSE})
        ident = etree.Element(_E + "Identifier")
        ident.text = sub.subscription_id
        epr(el, _E + "SubscriptionManager", ANONYMOUS, None, None, [ident])
        etree.SubElement(el, _E + "Status").text = WSE + "/SourceCancelling"
        etree.SubElement(el, _E + "Reason", {XML_LANG: "en"}).text = reason
        try:
            r = self._http.post(sub.notify_to, data=request_envelope(
                sub.notify_to, WSE + "/SubscriptionEnd", el), headers={"Content-Type": CT},
                allow_redirects=False, timeout=self.config.notify_timeout_seconds)
        except requests.RequestException as exc:
            raise EndpointUnreachable(f"{sub.notify_to}: {type(exc).__name__}") from None
        if r.status_code not in (200, 202, 204):
            raise EndpointUnreachable(f"{sub.notify_to} answered HTTP {r.status_code}")

    def get_status(self, sub: Subscription, req: EndpointStatusRequest) -> EndpointStatus:
        el = etree.Element(_K + "GetStatus", nsmap={"kms": KMS})
        if req.target_of_interest:
            etree.SubElement(el, _K + "TargetOfInterest").text = req.target_of_interest
        if req.locale:
            etree.SubElement(el, _K + "Locale").text = req.locale
        res = self._post(sub, "GetStatus", el)
        keys_in_use = res.findtext(_K + "KeysInUse")
        return EndpointStatus(
            res.findtext(_K + "EndpointId"), res.findtext(_K + "Locale"),
            res.findtext(_K + "OperatingMode"), int(keys_in_use) if keys_in_use else None,
            res.findtext(_K + "RekeyStatus"),
            tuple((a.findtext(_K + "Name") or "", a.findtext(_K + "Value") or "")
                  for a in res.iterfind(f"{_K}Status/{_K}Attribute")))


def deliver_once(db: Database, caller: ClientServiceCaller, config: Config) -> int:
    """One pass: expired subscriptions go; due notifications are posted. Returns how many
    were acknowledged."""
    with db.transaction() as conn:
        updates = Repository(conn).updates
        expired = updates.expired_subscriptions(utcnow())
        due = updates.due_pending(utcnow())
    if expired:
        _end(caller, expired, "the subscription expired or its client was disabled")
        with db.transaction(write=True) as conn:
            for sub in expired:  # with their pending notifications
                Repository(conn).updates.delete_subscription(sub.subscription_id)
    acked = 0
    for p in due:
        acked += _deliver(db, caller, config, p)
    return acked


def _end(caller: ClientServiceCaller, subs: list[Subscription], reason: str) -> None:
    """Tell each subscriber its subscription ends (best effort: it goes either way)."""
    for sub in subs:
        try:
            caller.subscription_end(sub, reason)
        except KmsError as exc:
            log.warning("SubscriptionEnd to subscription %s: %s", sub.subscription_id,
                        exc.reason)


def _deliver(db: Database, caller: ClientServiceCaller, config: Config, p: Pending) -> int:
    sub = p.subscription
    try:
        reached = caller.update_pending(sub, p.token)
        error = None if reached is not None and reached >= p.token else "not acknowledged"
    except NotifyToRefused as exc:
        with db.transaction(write=True) as conn:
            Repository(conn).updates.delete_subscription(sub.subscription_id)
        log.warning("subscription %s ended: %s", sub.subscription_id, exc.reason)
        return 0
    except KmsError as exc:
        reached, error = None, exc.reason
    with db.transaction(write=True) as conn:
        updates = Repository(conn).updates
        if error is None and reached is not None:
            updates.acknowledge(sub.endpoint_id, reached, subscription_id=sub.subscription_id)
            return 1
        attempts = p.attempts + 1
        updates.retry_later(sub.subscription_id, p.token, attempts, subscriptions.next_attempt(
            utcnow(), attempts, config.notify_retry_seconds, config.notify_retry_max_seconds))
    log.warning("UpdatePending to subscription %s: %s (attempt %d)", sub.subscription_id,
                error, attempts)
    return 0


def run(config: Config, stop: threading.Event | None = None) -> None:
    """The delivery loop. Exits when `stop` is set or the parent process goes away."""
    stop = stop or threading.Event()
    from ..app import message_validator  # the composition root builds the validator
    parent = os.getppid()
    db = Database(config.db_url)
    caller = ClientServiceCaller(config, message_validator())
    try:
        while not stop.is_set() and os.getppid() == parent:
            try:
                deliver_once(db, caller, config)
            except Exception:  # noqa: BLE001 - keep delivering; the row stays pending
                log.exception("delivery pass failed")
            stop.wait(config.notify_poll_seconds)
    finally:
        db.dispose()


