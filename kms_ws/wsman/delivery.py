"""Server-initiated calls to the KMS Client Service (wsdl/kms-client.wsdl): §6.11
UpdatePending and §6.10 GetStatus, posted to a subscription's NotifyTo address, and
WS-Eventing SubscriptionEnd to its EndTo; and the delivery loop that repeats UpdatePending
with backoff until the subscriber acknowledges (or gives up: DeliveryFailure).

The loop runs in one small process per server (`kms-ws deliver`, started and stopped by
`kms-ws serve`): pending notifications are rows in the store, so it can restart (or run
on another node) at any time without losing one. Each pass first records the key
transitions whose date has passed (service.key_dates: claimed once across nodes), so
their UpdatePending goes out in the same pass. Once a second it also closes the
intervals of refused unauthenticated requests (service.refusals.tidy; their records are
chained, so it opens the master key for the audit chain's key)."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from lxml import etree

from ..audit.chain import AuditChain
from ..audit.syslog import SyslogSink
from ..config import Config
from ..crypto.master_key import Keyring
from ..domain.errors import EndpointUnreachable, KmsError, NotifyToRefused
from ..domain.records import Pending, Subscription, SubscriptionEnd
from ..security import wssecurity
from ..security import xml as secure_xml
from ..security.xml import child_text, text_of
from ..service import key_dates, notify_to, refusals, subscription_end, subscriptions
from ..service.dispatch import utcnow
from ..service.ports import Store
from ..service.subscription_end import EndStatus
from ..service.ws_messages import EndpointStatus, EndpointStatusRequest
from ..xmlns import ANONYMOUS, KMS, SOAP, WSA, WSE, WSU, action
from .call import epr
from .pinned import Answer, PinnedPoster

log = logging.getLogger("kms_ws.delivery")
_K, _S, _E = f"{{{KMS}}}", f"{{{SOAP}}}", f"{{{WSE}}}"
END_STATUSES = {status: f"{WSE}/{status.value}" for status in EndStatus}  # wse:Status URIs
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
CT = "application/soap+xml;charset=UTF-8"


def request_envelope(to: str, action_uri: str, payload: etree._Element,
                     sign: Callable[[etree._Element], None] | None = None) -> bytes:
    env = etree.Element(_S + "Envelope", nsmap={"s": SOAP, "wsa": WSA, "kms": KMS, "wsu": WSU})
    header = etree.SubElement(env, _S + "Header")
    for name, text in (("To", to), ("Action", action_uri),
                       ("MessageID", f"uuid:{uuid.uuid4()}")):
        etree.SubElement(header, f"{{{WSA}}}{name}").text = text
    reply = etree.SubElement(header, f"{{{WSA}}}ReplyTo")
    etree.SubElement(reply, f"{{{WSA}}}Address").text = ANONYMOUS
    etree.SubElement(env, _S + "Body").append(payload)
    if sign is not None:
        sign(env)
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
    """Posts KMS Client Service requests, signed with the server's key like its responses
    (when security.sign_responses), to the pinned checked address of NotifyTo / EndTo;
    returns the response Body's first element once it is valid against the message
    schema (what an endpoint says is relayed to administrators only if valid)."""

    def __init__(self, config: Config, validator: etree.XMLSchema,
                 signing_key: wssecurity.SigningKey | None = None) -> None:
        self.config = config
        self.validator = validator
        self.signing_key = signing_key if config.security.sign_responses else None
        self._http = PinnedPoster(config.notify_timeout_seconds,
                                  ca_file=config.notify_ca_file)

    def _sign(self, env: etree._Element) -> None:
        """Body, Timestamp and every header block (To, Action, MessageID, ReplyTo); the
        Security header is not mustUnderstand, so that a listener built on a stack
        without WS-Security can take the call."""
        if self.signing_key is not None:
            wssecurity.sign(env, self.signing_key, now=utcnow(),
                            ttl_seconds=self.config.security.timestamp_ttl_seconds,
                            must_understand=False)

    def _send(self, address: str, origin: str | None, what: str, action_uri: str,
              payload: etree._Element) -> Answer:
        # Checked before every call (the administrator may have narrowed the networks; a
        # host name may resolve elsewhere now) and sent to the addresses just checked.
        target = notify_to.check(address, origin, self.config.security.notify_to_networks,
                                 what)
        return self._http.post(target, request_envelope(address, action_uri, payload,
                                                        self._sign), {"Content-Type": CT})

    def _post(self, sub: Subscription, operation: str, payload: etree._Element) -> etree._Element:
        r = self._send(sub.notify_to, sub.origin, "NotifyTo", action(operation), payload)
        if r.status != 200:
            raise EndpointUnreachable(f"{sub.notify_to} answered HTTP {r.status}")
        try:
            root = secure_xml.parse(r.body, self.config.security)
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
        got = [int(text_of(t) or 0) for t in res.iterfind(f"{_K}UpdateVersioningTokens/{_K}Token")
               if t.get("Type") == sub.update_type]
        return max(got) if got else None

    def subscription_end(self, end: SubscriptionEnd) -> None:
        """WS-Eventing SubscriptionEnd (one-way) to the subscription's EndTo."""
        el = etree.Element(_E + "SubscriptionEnd", nsmap={"wse": WSE})
        ident = etree.Element(_E + "Identifier")
        ident.text = end.subscription_id
        epr(el, _E + "SubscriptionManager", ANONYMOUS, None, None, [ident])
        etree.SubElement(el, _E + "Status").text = END_STATUSES[EndStatus(end.status)]
        etree.SubElement(el, _E + "Reason", {XML_LANG: "en"}).text = end.reason
        r = self._send(end.end_to, end.origin, "EndTo", WSE + "/SubscriptionEnd", el)
        if r.status not in (200, 202, 204):
            raise EndpointUnreachable(f"{end.end_to} answered HTTP {r.status}")

    def get_status(self, sub: Subscription, req: EndpointStatusRequest) -> EndpointStatus:
        el = etree.Element(_K + "GetStatus", nsmap={"kms": KMS})
        if req.target_of_interest:
            etree.SubElement(el, _K + "TargetOfInterest").text = req.target_of_interest
        if req.locale:
            etree.SubElement(el, _K + "Locale").text = req.locale
        res = self._post(sub, "GetStatus", el)
        keys_in_use = child_text(res, _K + "KeysInUse")
        return EndpointStatus(
            child_text(res, _K + "EndpointId"), child_text(res, _K + "Locale"),
            child_text(res, _K + "OperatingMode"), int(keys_in_use) if keys_in_use else None,
            child_text(res, _K + "RekeyStatus"),
            tuple((child_text(a, _K + "Name") or "", child_text(a, _K + "Value") or "")
                  for a in res.iterfind(f"{_K}Status/{_K}Attribute")))


def deliver_once(db: Store, caller: ClientServiceCaller, config: Config,
                 syslog: SyslogSink | None = None) -> int:
    """One pass: key transitions whose date passed are announced and audited
    (service.key_dates; the store needs its audit signer);
    expired subscriptions end; due notifications are posted; due SubscriptionEnd messages
    are sent. Returns how many notifications were acknowledged."""
    key_dates.announce_due(db, utcnow(), syslog)
    with db.unit_of_work() as uow:
        expired = bool(uow.subscriptions.expired_subscriptions(utcnow(), limit=1))
        due = uow.subscriptions.due_pending(utcnow())
    if expired:
        with db.unit_of_work(write=True) as uow:  # looked up again: one may be renewed
            now = utcnow()
            for sub in uow.subscriptions.expired_subscriptions(now):
                subscription_end.end(uow, sub, "the subscription expired", now)
    acked = 0
    for p in due:
        acked += _deliver(db, caller, config, p)
    _send_ends(db, caller, config)
    return acked


def _send_ends(db: Store, caller: ClientServiceCaller, config: Config) -> None:
    """SubscriptionEnd to each ended subscription's EndTo, after the transaction that
    ended it committed. Repeated with UpdatePending's backoff (attempts and the next
    attempt time are stored: a restart does not lose them) until the EndTo takes it, or
    notify_give_up_seconds after it was queued, or at once when the EndTo no longer
    qualifies."""
    with db.unit_of_work() as uow:
        ends = uow.subscriptions.subscription_ends(utcnow())
    for end in ends:
        try:
            caller.subscription_end(end)
            error = None
        except NotifyToRefused as exc:  # it will not qualify again: no retry
            _forget_end(db, end, f"EndTo is no longer allowed: {exc.reason}")
            continue
        except KmsError as exc:
            error = exc.reason
        now = utcnow()
        limit = config.notify_give_up_seconds
        if error is None:
            _forget_end(db, end, None)
        elif limit and end.at is not None and (now - end.at).total_seconds() >= limit:
            _forget_end(db, end, f"{error}; given up after {end.attempts + 1} attempts")
        else:
            attempts = end.attempts + 1
            with db.unit_of_work(write=True) as uow:
                uow.subscriptions.retry_subscription_end(
                    end.end_id, attempts, subscriptions.next_attempt(
                        now, attempts, config.notify_retry_seconds,
                        config.notify_retry_max_seconds))
            log.warning("SubscriptionEnd to subscription %s: %s (attempt %d)",
                        end.subscription_id, error, attempts)


def _forget_end(db: Store, end: SubscriptionEnd, failure: str | None) -> None:
    with db.unit_of_work(write=True) as uow:
        uow.subscriptions.forget_subscription_end(end.end_id)
    if failure is not None:
        log.warning("SubscriptionEnd to subscription %s: %s", end.subscription_id, failure)


def _deliver(db: Store, caller: ClientServiceCaller, config: Config, p: Pending) -> int:
    sub, now = p.subscription, utcnow()
    failing_since = None
    try:
        reached = caller.update_pending(sub, p.token)
        error = None if reached is not None and reached >= p.token else "not acknowledged"
    except NotifyToRefused as exc:
        return _give_up(db, sub, f"NotifyTo is no longer allowed: {exc.reason}",
                        EndStatus.SOURCE_CANCELLING)
    except KmsError as exc:
        reached, error = None, exc.reason
        failing_since = p.failing_since or now
        limit = config.notify_give_up_seconds
        if limit and (now - failing_since).total_seconds() >= limit:
            return _give_up(db, sub, f"UpdatePending could not be delivered for {limit:g} s "
                            f"({error})", EndStatus.DELIVERY_FAILURE)
    with db.unit_of_work(write=True) as uow:
        if error is None and reached is not None:
            uow.subscriptions.acknowledge(sub.endpoint_id, reached,
                                          subscription_id=sub.subscription_id)
            return 1
        attempts = p.attempts + 1
        uow.subscriptions.retry_later(sub.subscription_id, p.token, attempts,
                                      subscriptions.next_attempt(
                                          utcnow(), attempts, config.notify_retry_seconds,
                                          config.notify_retry_max_seconds),
                                      failing_since)
    log.warning("UpdatePending to subscription %s: %s (attempt %d)", sub.subscription_id,
                error, attempts)
    return 0


def _give_up(db: Store, sub: Subscription, reason: str, status: EndStatus) -> int:
    with db.unit_of_work(write=True) as uow:
        if uow.subscriptions.get_subscription(sub.subscription_id) is not None:
            subscription_end.end(uow, sub, reason, utcnow(), status)
    log.warning("subscription %s ended: %s", sub.subscription_id, reason)
    return 0


PRUNE_BATCH = 1000  # removals forgotten per pass (one short write transaction)


def prune_removals(db: Store, config: Config) -> int:
    """Forget removals older than removal_horizon_seconds, a bounded batch per pass, so
    the removals table stays bounded; returns how many went."""
    if not config.removal_horizon_seconds:
        return 0
    before = utcnow() - timedelta(seconds=config.removal_horizon_seconds)
    with db.unit_of_work() as uow:  # most passes find nothing: no write transaction
        oldest = uow.changes.oldest_removal()
    if oldest is None or oldest >= before:
        return 0
    with db.unit_of_work(write=True) as uow:
        return uow.changes.prune_removals(before, PRUNE_BATCH)


def run(config: Config, db: Store, caller: ClientServiceCaller,
        open_keyring: Callable[[], Keyring], stop: threading.Event | None = None,
        syslog: SyslogSink | None = None,
        send_head: Callable[[], object] | None = None) -> None:
    """The delivery loop over `db`, composed by app.run_deliverer (which owns the store and
    the syslog sink). `send_head`: sends the audit chain's head to syslog when its interval
    has passed (the one periodic process per server does it). Exits when `stop` is set or
    the parent process goes away."""
    stop = stop or threading.Event()
    parent = os.getppid()
    next_tidy = 0.0
    while not stop.is_set() and os.getppid() == parent:
        try:
            if db.audit is None:  # its records are chained: the chain's key is sealed
                db.audit = AuditChain(open_keyring())
            deliver_once(db, caller, config, syslog)
        except Exception:  # noqa: BLE001 - keep delivering; the row stays pending
            log.exception("delivery pass failed")
        try:
            if send_head is not None:
                send_head()
        except Exception:  # noqa: BLE001 - the next interval tries again
            log.exception("sending the audit chain's head to syslog failed")
        if time.monotonic() >= next_tidy:
            next_tidy = time.monotonic() + 1.0
            try:
                if db.audit is None:  # as above, should the first pass have failed
                    db.audit = AuditChain(open_keyring())
                refusals.tidy(db, config.security, utcnow(), syslog)
            except Exception:  # noqa: BLE001 - the tallies stay; the next pass retries
                log.exception("closing refusal tallies failed")
            try:
                prune_removals(db, config)
            except Exception:  # noqa: BLE001 - the next pass retries
                log.exception("pruning removals failed")
        stop.wait(config.notify_poll_seconds)


