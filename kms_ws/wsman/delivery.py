"""Server-initiated calls to the KMS Client Service (wsdl/kms-client.wsdl): §6.11
UpdatePending and §6.10 GetStatus, posted to a subscription's NotifyTo address, and
WS-Eventing SubscriptionEnd to its EndTo; and the delivery loop that repeats UpdatePending
with backoff until the subscriber acknowledges (or gives up: DeliveryFailure).

The loop runs in one small process per server (`kms-ws deliver`, started and stopped by
`kms-ws serve`): pending notifications are rows in the store, so it can restart (or run
on another node) at any time without losing one. Its calls go out from a few threads
(Deliverer: notify_concurrency slots), so one listener that never answers holds one
slot, not the queue. Each poll first records the key transitions whose date has passed
(service.key_dates: claimed once across nodes), so their UpdatePending goes out at once.
Once a second it also closes the intervals of refused unauthenticated requests
(service.refusals.tidy; their records are chained, so it opens the master key for the
audit chain's key)."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

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
from ..service.ports import Store, UnitOfWork
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
                                  ca_file=config.notify_ca_file,
                                  connections=config.notify_concurrency)
        # the deliverer calls from several threads; lxml's parser and schema are shared
        self._xml = threading.Lock()

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
        with self._xml:
            try:
                root = secure_xml.parse(r.body, self.config.security)
            except KmsError:
                raise EndpointUnreachable(f"{sub.notify_to} answered with bad XML") from None
            body = root.find(_S + "Body")
            first = next((c for c in body if isinstance(c.tag, str)), None) \
                if body is not None else None
            if first is None or first.tag != _K + operation + "Response" or \
                    not self.validator.validate(first):
                raise EndpointUnreachable(f"{sub.notify_to} did not answer {operation} "
                                          "validly")
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


def end_expired(db: Store) -> None:
    """Once per poll: expired subscriptions end (their SubscriptionEnd is queued)."""
    with db.unit_of_work() as uow:
        expired = bool(uow.subscriptions.expired_subscriptions(utcnow(), limit=1))
    if expired:
        with db.unit_of_work(write=True) as uow:  # looked up again: one may be renewed
            now = utcnow()
            for sub in uow.subscriptions.expired_subscriptions(now):
                subscription_end.end(uow, sub, "the subscription expired", now)


@dataclass
class _Call:
    """One server-initiated call (UpdatePending for a pending notification, or a queued
    SubscriptionEnd) and what came of it."""
    item: Pending | SubscriptionEnd
    started: datetime
    reached: int | None = None  # UpdatePending: the token the subscriber says it reached
    error: str | None = None  # no valid answer
    refused: str | None = None  # the address no longer qualifies (no retry)

    @property
    def slot(self) -> tuple[str, str | int]:
        return _slot(self.item)


def _slot(item: Pending | SubscriptionEnd) -> tuple[str, str | int]:
    if isinstance(item, Pending):
        return ("UpdatePending", item.subscription.subscription_id)
    return ("SubscriptionEnd", item.end_id)


class Deliverer:
    """Posts due UpdatePending and SubscriptionEnd calls, at most config.notify_concurrency
    at once (one thread per slot): a listener that accepts the connection and never
    answers holds one slot until notify_timeout_seconds, not the others' notifications;
    and one client's subscriptions hold at most a quarter of the slots (SubscriptionEnd
    calls too, together), so a client with many stalling listeners cannot take them all.
    The rows stay in the store until the outcome of their call is recorded (an
    acknowledgement drops the notification; a failure backs off; a give-up ends the
    subscription), which `record` does for every call finished by then in one write
    transaction; a notification being posted is not handed out again meanwhile. Rows
    are not claimed in the store: deliverers on several nodes may post the same due
    notification (each takes only as many rows as it has free slots, just before
    posting them)."""

    def __init__(self, db: Store, caller: ClientServiceCaller, config: Config) -> None:
        self.db, self.caller, self.config = db, caller, config
        self.slots = config.notify_concurrency
        self.share = max(1, self.slots // 4)  # slots one client (or all ends) may hold
        self._jobs: queue.SimpleQueue[Pending | SubscriptionEnd] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        # handed out, outcome not recorded: whose (the subscriber; None: a SubscriptionEnd)
        self._busy: dict[tuple[str, str | int], str | None] = {}
        for n in range(self.slots):  # daemons: a stalled call does not hold up the exit
            threading.Thread(target=self._work, name=f"notify-{n}", daemon=True).start()

    @property
    def busy(self) -> int:
        return len(self._busy)

    def post_due(self) -> None:
        """Hand due calls to the free slots, SubscriptionEnd first, each client (and
        SubscriptionEnd) within its share."""
        free = self.slots - len(self._busy)
        if free <= 0:
            return
        held = Counter(self._busy.values())
        due: list[Pending | SubscriptionEnd] = []
        with self.db.unit_of_work() as uow:
            now = utcnow()
            room = min(free, self.share - held[None])
            if room > 0:
                due += [e for e in uow.subscriptions.subscription_ends(
                    now, limit=room + held[None]) if _slot(e) not in self._busy][:room]
            sending = [str(k) for kind, k in self._busy if kind == "UpdatePending"]
            for _ in range(4):  # a batch may bring a client past its share: ask again
                wanted = free - len(due)
                full = [h for h, n in held.items() if h is not None and n >= self.share]
                batch = uow.subscriptions.due_pending(now, limit=wanted, exclude=sending,
                                                      exclude_endpoints=full) \
                    if wanted > 0 else []
                for p in batch:
                    if held[p.subscription.endpoint_id] < self.share:
                        held[p.subscription.endpoint_id] += 1
                        due.append(p)
                    sending.append(p.subscription.subscription_id)
                if len(batch) < wanted or len(due) == free:
                    break
        for item in due:
            self._busy[_slot(item)] = item.subscription.endpoint_id \
                if isinstance(item, Pending) else None
            self._jobs.put(item)

    def record(self, wait: float) -> int:
        """Wait up to `wait` seconds for a call to finish, then record its outcome and
        that of every other call finished by then, in one write transaction; returns
        how many notifications were acknowledged."""
        calls: list[_Call] = []
        try:
            calls.append(self._done.get(timeout=wait) if wait > 0 else self._done.get_nowait())
            while True:
                calls.append(self._done.get_nowait())
        except queue.Empty:
            pass
        if not calls:
            return 0
        try:
            try:
                return _record(self.db, self.config, calls)
            except Exception:  # noqa: BLE001 - record them one by one: one bad row
                log.exception("recording %d delivery outcomes failed; one at a time",
                              len(calls))
            acked = 0
            for call in calls:
                try:
                    acked += _record(self.db, self.config, [call])
                except Exception:  # noqa: BLE001 - the row stays pending: posted again
                    log.exception("recording the outcome of %s %s failed", *call.slot)
            return acked
        finally:
            for call in calls:
                del self._busy[call.slot]

    def _work(self) -> None:
        while True:
            item = self._jobs.get()
            call = _Call(item, utcnow())
            try:
                if isinstance(item, Pending):
                    call.reached = self.caller.update_pending(item.subscription, item.token)
                else:
                    self.caller.subscription_end(item)
            except NotifyToRefused as exc:  # it will not qualify again: no retry
                call.refused = exc.reason
            except KmsError as exc:
                call.error = exc.reason
            except Exception:  # noqa: BLE001 - a bug must not stop the slot: back off
                log.exception("%s %s failed", *call.slot)
                call.error = "internal error"
            self._done.put(call)


def _record(db: Store, config: Config, calls: list[_Call]) -> int:
    """The outcomes of these calls, in one write transaction; the warnings about them
    are logged once it committed."""
    acked, warnings = 0, []
    with db.unit_of_work(write=True) as uow:
        for call in calls:
            if isinstance(call.item, Pending):
                ok, warning = _record_update(uow, config, call, call.item)
                acked += ok
            else:
                warning = _record_end(uow, config, call, call.item)
            if warning:
                warnings.append(warning)
    for warning in warnings:
        log.warning("%s", warning)
    return acked


def _record_update(uow: UnitOfWork, config: Config, call: _Call,
                   p: Pending) -> tuple[int, str | None]:
    sub, now = p.subscription, call.started
    failing_since = None
    if call.refused is not None:
        return 0, _give_up(uow, sub, f"NotifyTo is no longer allowed: {call.refused}",
                           EndStatus.SOURCE_CANCELLING)
    if call.error is None and call.reached is not None and call.reached >= p.token:
        uow.subscriptions.acknowledge(sub.endpoint_id, call.reached,
                                      subscription_id=sub.subscription_id)
        return 1, None
    error = call.error or "not acknowledged"
    if call.error is not None:
        failing_since = p.failing_since or now
        limit = config.notify_give_up_seconds
        if limit and (now - failing_since).total_seconds() >= limit:
            return 0, _give_up(uow, sub, f"UpdatePending could not be delivered for "
                               f"{limit:g} s ({error})", EndStatus.DELIVERY_FAILURE)
    attempts = p.attempts + 1
    uow.subscriptions.retry_later(sub.subscription_id, p.token, attempts,
                                  subscriptions.next_attempt(
                                      utcnow(), attempts, config.notify_retry_seconds,
                                      config.notify_retry_max_seconds),
                                  failing_since)
    return 0, (f"UpdatePending to subscription {sub.subscription_id}: {error} "
               f"(attempt {attempts})")


def _give_up(uow: UnitOfWork, sub: Subscription, reason: str, status: EndStatus) -> str:
    if uow.subscriptions.get_subscription(sub.subscription_id) is not None:
        subscription_end.end(uow, sub, reason, utcnow(), status)
    return f"subscription {sub.subscription_id} ended: {reason}"


def _record_end(uow: UnitOfWork, config: Config, call: _Call,
                end: SubscriptionEnd) -> str | None:
    """A SubscriptionEnd (queued by the transaction that ended its subscription) is
    repeated with UpdatePending's backoff (attempts and the next attempt time are stored:
    a restart does not lose them) until the EndTo takes it, or notify_give_up_seconds
    after it was queued, or at once when the EndTo no longer qualifies."""
    what = f"SubscriptionEnd to subscription {end.subscription_id}"
    if call.refused is not None:
        uow.subscriptions.forget_subscription_end(end.end_id)
        return f"{what}: EndTo is no longer allowed: {call.refused}"
    if call.error is None:
        uow.subscriptions.forget_subscription_end(end.end_id)
        return None
    now, limit = utcnow(), config.notify_give_up_seconds
    if limit and end.at is not None and (now - end.at).total_seconds() >= limit:
        uow.subscriptions.forget_subscription_end(end.end_id)
        return f"{what}: {call.error}; given up after {end.attempts + 1} attempts"
    attempts = end.attempts + 1
    uow.subscriptions.retry_subscription_end(end.end_id, attempts, subscriptions.next_attempt(
        now, attempts, config.notify_retry_seconds, config.notify_retry_max_seconds))
    return f"{what}: {call.error} (attempt {attempts})"


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
    the syslog sink). Every notify_poll_seconds it does its chores and looks for due
    calls; while they fill every free slot it does not wait for the poll: each finished
    call frees its slot for the next due one at once. `send_head`: sends the audit
    chain's head to syslog when its interval has passed (the one periodic process per
    server does it). Exits when `stop` is set or the parent process goes away."""
    stop = stop or threading.Event()
    parent = os.getppid()
    deliverer = Deliverer(db, caller, config)
    next_poll = next_tidy = 0.0
    while not stop.is_set() and os.getppid() == parent:
        if time.monotonic() >= next_poll:
            next_poll = time.monotonic() + config.notify_poll_seconds
            _poll(db, open_keyring, syslog, send_head)
            if time.monotonic() >= next_tidy:
                next_tidy = time.monotonic() + 1.0
                _tidy(config, db, open_keyring, syslog)
        if deliverer.busy < deliverer.slots:  # at each poll, and when a slot came free
            try:
                deliverer.post_due()
            except Exception:  # noqa: BLE001 - keep delivering; the rows stay pending
                log.exception("looking for due notifications failed")
        wait = max(next_poll - time.monotonic(), 0.0)
        if deliverer.busy:
            deliverer.record(wait)
        else:
            stop.wait(wait)
    deliverer.record(0.0)  # what finished meanwhile; calls still out are posted again


def _poll(db: Store, open_keyring: Callable[[], Keyring], syslog: SyslogSink | None,
          send_head: Callable[[], object] | None) -> None:
    # Each chore on its own: one that fails (the master key cannot be opened for the
    # audit chain) holds up no other, and deliveries go on meanwhile (Deliverer).
    try:
        end_expired(db)
    except Exception:  # noqa: BLE001 - the next poll tries again
        log.exception("ending expired subscriptions failed")
    try:
        if db.audit is None:  # its records are chained: the chain's key is sealed
            db.audit = AuditChain(open_keyring())
        # key transitions whose date passed are announced and audited (their
        # UpdatePending is then due at once)
        key_dates.announce_due(db, utcnow(), syslog)
    except Exception:  # noqa: BLE001 - the next poll tries again
        log.exception("announcing key transitions failed")
    try:
        if send_head is not None:
            send_head()
    except Exception:  # noqa: BLE001 - the next interval tries again
        log.exception("sending the audit chain's head to syslog failed")


def _tidy(config: Config, db: Store, open_keyring: Callable[[], Keyring],
          syslog: SyslogSink | None) -> None:
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
