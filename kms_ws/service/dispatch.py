"""The dispatch table (operation name -> handler) and the service entry point that runs
one operation: authenticate the caller, open the unit of work, call the handler, audit."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, NoReturn

from ..audit.chain import AuditChain
from ..audit.events import AuditEvent
from ..audit.syslog import SyslogSink
from ..crypto.master_key import Keyring
from ..domain import backoff
from ..domain.errors import (
    ActionNotSupported,
    AuditQuotaExceeded,
    KmsError,
    PasswordRefused,
    ReplayedMessage,
    StorageFull,
)
from ..domain.model import ClientState, Endpoint
from ..domain.records import WriteNeeded
from ..security.certificates import check_validity, fingerprint
from ..security.proofs import KeyRef, VerificationKey
from ..security.settings import SecuritySettings
from . import (
    audit,
    authentication,
    bindings,
    capabilities,
    endpoints,
    identify,
    keys,
    monitoring,
    random,
    refusals,
    subscriptions,
    transfer,
    update_list,
    wrapping_keys,
)
from . import audit_trail as trail
from .admin import handlers as admin
from .context import RequestContext, Transport
from .messages import AuthenticateRequest, Credential, VerifiedSignature
from .monitoring import NoObserver, Observer, observe_refusal
from .operator import OPERATOR_TRANSPORT, LocalOperator
from .pep_auth import reject_unused_proof
from .ports import SpaceCheck, Store, UnitOfWork
from .update_types import KEY_TYPES
from .ws_messages import UpdatePage

log = logging.getLogger("kms_ws.service")

Handler = Callable[[RequestContext, Any], Any]


class TxMode(Enum):
    """How an operation's units of work run: their transactions, whether the commit
    reaches the disk before the answer, whether success is a mandatory audit record, and
    whether the operation is refused below the free-space watermark (store/space.py:
    operations that change something are refused there; reads go on, deliveries too,
    their audit records using the reserve)."""

    # A read-only operation: one unit of work that writes nothing; its success is
    # recorded only where an audit policy asks (a short write after it, not synced).
    READ = "read"
    # A delivery (GetKey, Transfer.Get): the handler runs in a read-only unit of work;
    # its deferred writes (use tracking) and mandatory audit records commit in a short
    # write transaction after it, so deliveries on several workers do not queue behind
    # SQLite's one write lock. That commit survives a process crash but is not synced to
    # disk on its own (a later durable commit syncs it): a sync per delivery would cap
    # deliveries at the disk's sync rate. A handler that does write (GetKey by data that
    # creates the key) is run again as a writer (not durable), refused when space is low.
    # A signed request's replay-cache entry joins the recording transaction: nothing is
    # answered before it commits, and a request that fails is remembered all the same.
    READ_THEN_RECORD = "read-then-record"
    # A change: one durable write transaction with its mandatory audit records; refused
    # below the free-space watermark.
    WRITE = "write"
    # A durable write served below the free-space watermark (Authenticate: clients that
    # read with a session credential keep their sessions).
    WRITE_WHEN_LOW = "write-when-low"
    # A write transaction with mandatory audit records, not synced on its own: what a
    # read or a delivery becomes when accepted on a PEP's proof (its replay-cache entry
    # and its audit record, naming the PEP, are written with it).
    WRITE_NOT_DURABLE = "write-not-durable"

    @property
    def writes(self) -> bool:
        """The handler's unit of work takes the write lock."""
        return self in (TxMode.WRITE, TxMode.WRITE_WHEN_LOW, TxMode.WRITE_NOT_DURABLE)

    @property
    def audited(self) -> bool:
        """Success is a mandatory audit record."""
        return self is not TxMode.READ

    @property
    def durable(self) -> bool:
        return self not in (TxMode.READ_THEN_RECORD, TxMode.WRITE_NOT_DURABLE)

    @property
    def guarded(self) -> bool:
        """Refused (once the caller is known) below the free-space watermark."""
        return self is TxMode.WRITE

    def proven(self) -> TxMode:
        """The mode of a request accepted on a PEP's proof: the proof enters the replay
        cache in the request's own commit (a writer from the start), and the request is
        an audit record (with the PEP)."""
        return TxMode.WRITE_NOT_DURABLE if self in (TxMode.READ, TxMode.READ_THEN_RECORD) \
            else self


@dataclass(frozen=True)
class Operation:
    handler: Handler
    mode: TxMode


OPERATIONS: dict[str, Operation] = {
    "RegisterEndpoint": Operation(endpoints.register_endpoint, TxMode.WRITE),
    "RegisterWrappingValues": Operation(wrapping_keys.register_wrapping_values, TxMode.WRITE),
    "Authenticate": Operation(authentication.authenticate, TxMode.WRITE_WHEN_LOW),
    "NegotiateCapabilities": Operation(capabilities.negotiate_capabilities, TxMode.READ),
    "GetServerCapabilities": Operation(capabilities.get_server_capabilities, TxMode.READ),
    "CreateKey": Operation(keys.create_key, TxMode.WRITE),
    "StoreKey": Operation(keys.store_key, TxMode.WRITE),
    # each delivery is an audit record and USE_BY tracking
    "GetKey": Operation(keys.get_key, TxMode.READ_THEN_RECORD),
    "GetBindings": Operation(bindings.get_bindings, TxMode.READ),
    "PushAuditMessage": Operation(audit.push_audit_message, TxMode.WRITE),
    "GetRandomBytes": Operation(random.get_random_bytes, TxMode.READ),
    "AdminCreate": Operation(admin.admin_create, TxMode.WRITE),
    "AdminGet": Operation(admin.admin_get, TxMode.READ),
    "AdminList": Operation(admin.admin_list, TxMode.READ),
    "AdminEdit": Operation(admin.admin_edit, TxMode.WRITE),
    "AdminDelete": Operation(admin.admin_delete, TxMode.WRITE),
    "AdminAssociate": Operation(admin.admin_associate, TxMode.WRITE),
    "AdminDisassociate": Operation(admin.admin_disassociate, TxMode.WRITE),
    "AdminAudit": Operation(admin.admin_audit, TxMode.READ),
    "AdminBindings": Operation(admin.admin_bindings, TxMode.READ),
    # Read-only: the call to the endpoint must not hold a write transaction open.
    "GetEndpointStatus": Operation(subscriptions.endpoint_status, TxMode.READ),
}

# WS-Management operations (kms_ws.wsman routes them by their WS-* action).
MANAGEMENT: dict[str, Operation] = {
    "Identify": Operation(identify.identify, TxMode.READ),
    # Like GetKey: a delivered value is an audit record and use tracking.
    "Transfer.Get": Operation(transfer.transfer_get, TxMode.READ_THEN_RECORD),
    "Transfer.Create": Operation(transfer.transfer_create, TxMode.WRITE),
    "Transfer.Put": Operation(transfer.transfer_put, TxMode.WRITE),
    "Transfer.Delete": Operation(transfer.transfer_delete, TxMode.WRITE),
    "Enumeration.Enumerate": Operation(update_list.enumerate_updates, TxMode.READ),
    "Enumeration.Pull": Operation(update_list.pull, TxMode.READ),
    "Enumeration.Renew": Operation(update_list.renew, TxMode.READ),
    "Enumeration.GetStatus": Operation(update_list.get_status, TxMode.READ),
    "Enumeration.Release": Operation(update_list.release, TxMode.READ),
    "Eventing.Subscribe": Operation(subscriptions.subscribe, TxMode.WRITE),
    "Eventing.Renew": Operation(subscriptions.renew, TxMode.WRITE),
    "Eventing.Unsubscribe": Operation(subscriptions.unsubscribe, TxMode.WRITE),
}


_LOCAL = Transport(secure=False, loopback=True)  # an in-process caller


@dataclass
class _Call:
    """One request as the service runs it."""
    name: str
    handler: Handler
    mode: TxMode
    credential: Credential | None
    request: Any
    request_id: str
    transport: Transport
    now: datetime
    # a signed request not yet in the replay cache (a delivery enters it when it records)
    signed: VerifiedSignature | None = None
    # refused below the free-space watermark once the caller is known
    guarded: bool = False
    # the caller the last unit of work authenticated (a failure is audited with it)
    caller: Endpoint | None = None
    # an offline command's: the caller, without a credential (service.operator)
    operator: LocalOperator | None = None


@dataclass(frozen=True)
class _Served:
    """What a committed unit of work answers with, and what follows it."""
    result: Any
    caller: Endpoint
    routed: list[trail.Routed]  # its audit events and where each goes


class _Held(Enum):
    """Why a unit of work committed no answer."""
    REPLAYED = "the signed request was seen before: its unit of work wrote nothing"
    WRITE_NEEDED = "the handler wrote in a read-only unit of work: nothing was committed"


def _remembered(uow: UnitOfWork, signed: VerifiedSignature, now: datetime) -> bool:
    """Enter a signed message in the replay cache; False when it was there (a replay)."""
    return uow.replay.remember_message(signed.signer_id, signed.message_digest,
                                       signed.accept_until, now)


def _credential(credential: Credential | None, request: Any) -> Credential | None:
    """The request's credential: Login and Validate check the one in their body."""
    if isinstance(request, AuthenticateRequest) and request.request_type != "Logout" \
            and request.credential is not None:
        return request.credential
    return credential


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class KmsService:
    """Runs operations. One per process; per-request state lives in RequestContext."""

    def __init__(self, db: Store, master: Keyring, settings: SecuritySettings,
                 clock: Callable[[], datetime] = utcnow,
                 syslog: SyslogSink | None = None, outbound: Any = None,
                 space: SpaceCheck | None = None, observer: Observer | None = None) -> None:
        self.db = db
        self.observer: Observer = observer or NoObserver()
        if db.audit is None:  # the audit records this service writes are chained
            db.audit = AuditChain(master)
        self.space = space
        self.outbound = outbound
        self.master = master
        self.settings = settings
        self.clock = clock
        self.syslog = syslog
        self.passwords = authentication.PasswordCache(settings.password_cache_seconds)
        self._signer_keys: dict[str, tuple[float, VerificationKey]] = {}

    def run(self, name: str, credential: Credential | None, request: Any,
            request_id: str, transport: Transport = _LOCAL) -> Any:
        return self._run(self._call(name, credential, request, request_id, transport))

    def run_as_operator(self, name: str, request: Any, operator: LocalOperator) -> Any:
        """An offline command (service.operator): the operation's own handler, unit of
        work, rules and audit records, with the local operator as the caller."""
        call = self._call(name, None, request, uuid.uuid4().hex[:16], OPERATOR_TRANSPORT)
        call.operator = operator
        return self._run(call)

    def _run(self, call: _Call) -> Any:
        if call.signed is not None and call.mode is not TxMode.READ_THEN_RECORD:
            self._enter_signed(call)  # remembered before anything: not again with the answer
        try:
            served = self._serve(call)
        except Exception as exc:
            self._failed_call(call, exc)
            raise
        if isinstance(served, _Held):  # a replay (a delivery's, seen as it records)
            assert call.signed is not None
            self._replayed(call.name, call.signed, call.now)
        return self._answer(call, served)

    def _call(self, name: str, credential: Credential | None, request: Any,
              request_id: str, transport: Transport) -> _Call:
        """The request to run: its operation, its credential, its mode."""
        op = OPERATIONS.get(name) or MANAGEMENT.get(name)
        if op is None:
            raise ActionNotSupported(f"no operation {name}")
        # A signed message is one-time whatever authenticates it: Login and Validate
        # check the credential in their Body, and still enter the replay cache.
        signed = credential.signature if credential is not None else None
        credential = _credential(credential, request)
        mode = op.mode
        if credential is not None and credential.pep_proof is not None:
            mode = mode.proven()
        return _Call(name, op.handler, mode, credential, request, request_id, transport,
                     self.clock(), signed=signed, guarded=mode.guarded)

    def _enter_signed(self, call: _Call) -> None:
        """The replay cache, shared through the store: a signed message is accepted once."""
        assert call.signed is not None
        if not self._remember(call.signed, call.now):
            self._replayed(call.name, call.signed, call.now)
        call.signed = None

    def _serve(self, call: _Call) -> _Served | _Held:
        """Authenticate and run the handler in its units of work (see TxMode)."""
        if call.mode is not TxMode.READ_THEN_RECORD:
            return self._unit(call, call.mode)
        served = self._read_then_record(call)
        if served is not _Held.WRITE_NEEDED:
            return served
        # nothing was committed: run it as a writer (a change)
        if call.signed is not None:
            if not self._remember(call.signed, call.now):
                return _Held.REPLAYED
            call.signed = None
        call.guarded = True
        return self._unit(call, TxMode.WRITE_NOT_DURABLE)

    def _failed_call(self, call: _Call, exc: Exception) -> None:
        """A request that failed: a signed one is remembered all the same (a replay of it
        is refused as one; a store that refuses even that gives the fault), and a refusal
        is audited (with its caller, once known)."""
        if call.signed is not None:
            try:
                fresh = self._remember(call.signed, call.now)
            except KmsError as again:
                self._audit_failure(call, again)
                raise
            if not fresh:
                self._replayed(call.name, call.signed, call.now)
            call.signed = None
        if isinstance(exc, KmsError):
            self._audit_failure(call, exc)

    def _audit_failure(self, call: _Call, exc: KmsError) -> None:
        observe_refusal(self.observer, call.name, exc)
        if isinstance(exc, StorageFull) and self.space is not None:
            self.space.report(exc.reason)
        if call.caller is None:
            self._refused(call.name, call.credential, call.transport, call.request, exc)
        else:
            self._failed(call.name, call.caller, call.now, call.request, exc)

    def _answer(self, call: _Call, served: _Served) -> Any:
        trail.send(self.syslog, served.routed)
        if call.mode is TxMode.READ:
            self._optional(served.routed)
        caller = served.caller
        if caller.failed_auth or caller.state is ClientState.LOCKED:
            # a right credential: the count of wrong ones goes (a lockout run out ends)
            with self.db.unit_of_work(write=True) as uow:
                uow.endpoints.reset_auth_failures(
                    caller.endpoint_id,
                    backoff.locked_before(call.now, self.settings.lockout_seconds))
        return served.result

    def _unit(self, call: _Call, mode: TxMode) -> _Served:
        """Authenticate and run the handler in one unit of work with its deferred writes
        and audit records."""
        with self.db.unit_of_work(write=mode.writes, durable=mode.durable) as uow:
            ctx, caller = self._context(uow, call)
            if call.guarded and self.space is not None:
                self.space.check()
            result = call.handler(ctx, call.request)
            reject_unused_proof(ctx)
            for write in ctx.deferred:
                write(ctx.uow)
            events = trail.success_events(call.name, caller, call.now, call.request, result)
            routed = trail.route(ctx.uow, events, mode.audited)
            # PushAuditMessage stores the pushed messages itself (with their times); a
            # read records what a policy asks for after its unit of work (_optional).
            if mode.writes and call.name != "PushAuditMessage":
                trail.record(routed, ctx.uow)
        return _Served(result, caller, routed)

    def _read_then_record(self, call: _Call) -> _Served | _Held:
        try:
            with self.db.unit_of_work(read_only=True) as uow:
                ctx, caller = self._context(uow, call)
                result = call.handler(ctx, call.request)
                events = trail.success_events(call.name, caller, call.now, call.request,
                                              result)
                # routed by the audit policies in force where the request was served
                routed = trail.route(ctx.uow, events, call.mode.audited)
        except WriteNeeded:
            return _Held.WRITE_NEEDED
        # The answer is only given once its audit record and use tracking are committed
        # (and, for a signed request, its replay-cache entry: a replay is refused here).
        with self.db.unit_of_work(write=True, durable=call.mode.durable) as uow:
            if call.signed is not None and not _remembered(uow, call.signed, call.now):
                return _Held.REPLAYED  # nothing else is written
            for write in ctx.deferred:
                write(uow)
            trail.record(routed, uow)
        return _Served(result, caller, routed)

    def _context(self, uow: UnitOfWork, call: _Call) -> tuple[RequestContext, Endpoint]:
        """The request's context on this unit of work, and its authenticated caller."""
        credential = call.credential
        ctx = RequestContext(None, uow, call.now, call.request_id,
                             self.settings, self.master, self.outbound,
                             transport=call.transport,
                             pep_proof=credential.pep_proof if credential is not None else None)
        call.caller = None
        caller = ctx.caller = call.caller = call.operator.caller(ctx) \
            if call.operator is not None \
            else authentication.authenticate_caller(ctx, credential, self.passwords)
        return ctx, caller

    def acknowledge_updates(self, page: UpdatePage) -> int:
        """The client received the final page of a GetUpdateList: pending UpdatePending
        notifications up to its snapshot are acknowledged (§6.11)."""
        if not page.acknowledges:
            return 0
        # a list of keys acknowledges key notifications; a custom type's, its own
        types = KEY_TYPES if page.token_type in KEY_TYPES else (page.token_type,)
        with self.db.unit_of_work(write=True) as uow:
            return uow.subscriptions.acknowledge(page.caller_id, page.high, page.pep_id,
                                                 types=types)

    def _failed(self, name: str, caller: Endpoint, now: datetime, request: Any,
                exc: KmsError) -> None:
        """A refused or failed request of a known caller is a mandatory audit record, in
        its own transaction (the request's own changes were rolled back)."""
        event = trail.failure_event(name, caller, now, request, exc)
        with self.db.unit_of_work(write=True) as uow:
            if isinstance(exc, AuditQuotaExceeded) and \
                    not audit.refusal_recorded(uow, caller, exc, now):
                return  # counted: the minute's refusals become one record
            routed = trail.record_routed([event], uow, True)
        trail.send(self.syslog, routed)

    def refuse(self, name: str, signer_id: str, exc: KmsError) -> None:
        """A signed request refused by the transport after its signature verified (a
        header left unsigned or given twice): an audit record of its signer."""
        now = self.clock()
        with self.db.unit_of_work() as uow:
            signer = uow.endpoints.get_endpoint(signer_id)
        if signer is not None:  # else deleted since it signed: refused, no one to audit
            self._failed(name, signer, now, None, exc)

    def _optional(self, routed: list[trail.Routed]) -> None:
        """Reads that an audit policy asks to record locally."""
        if not any(r.local for r in routed):
            return
        with self.db.unit_of_work(write=True, durable=False) as uow:
            trail.record(routed, uow)

    def status(self) -> monitoring.Status:
        """The figures monitoring shows (service.monitoring)."""
        return monitoring.status(self.db)

    def readiness(self) -> str | None:
        """None when this process can serve, else why not (service.monitoring)."""
        return monitoring.readiness(self.db, self.master, self.space)

    def verification_key(self, ref: KeyRef) -> VerificationKey:
        """The registered key a message signature names: the one look-up the transport
        makes before `run`, because it verifies the signature (XML) before it can trust
        the message's headers and Body, which name the operation. It proves nothing about
        the caller: `run` authenticates the signer again in the request's own unit of work
        (service.authentication: still a registered, active client holding this key).
        Certificate look-ups are remembered for a minute per process."""
        now = self.clock()
        slot = fingerprint(ref.certificate) if ref.certificate is not None else None
        hit = self._signer_keys.get(slot) if slot else None
        if hit is not None and hit[0] > time.monotonic():
            check_validity(hit[1].cert, now)  # type: ignore[arg-type]
            return hit[1]
        with self.db.unit_of_work() as uow:
            key = authentication.verification_key(uow, self.master, ref, now)
        if slot:
            if len(self._signer_keys) >= 10_000:
                self._signer_keys.clear()
            self._signer_keys[slot] = (time.monotonic() + 60, key)
        return key

    def _remember(self, signed: VerifiedSignature, now: datetime) -> bool:
        """Enter a signed message in the replay cache; False for a replay."""
        with self.db.unit_of_work(write=True, durable=False) as uow:
            return _remembered(uow, signed, now)

    def _replayed(self, name: str, signed: VerifiedSignature, now: datetime) -> NoReturn:
        """A replay is a mandatory audit record (durable, and always to syslog)."""
        with self.db.unit_of_work(write=True) as uow:
            ep = uow.endpoints.get_endpoint(signed.signer_id)
            event = AuditEvent(now, name, "Replay", "Denied", signed.signer_id,
                               ep.name if ep else None,
                               message="a signed message was presented again")
            routed = trail.record_routed([event], uow, True)
        trail.send(self.syslog, routed)
        self.observer.replay_refused(name)
        raise ReplayedMessage("this signed message was already received (replay)")

    def _refused(self, name: str, credential: Credential | None, transport: Transport,
                 request: Any, exc: KmsError) -> None:
        """A request refused before its caller was authenticated: a refused password is
        counted against its user name and source (backoff) and, a wrong one, against the
        client (lockout); the refusal is audited in aggregate (service.refusals). Its own
        transaction, durable when a password was checked (as rare as the scrypt that
        checked it) or when it opens an interval's record; else a short write that is
        synced by the next durable commit."""
        refusal = refusals.Refusal.of(name, transport, exc,
                                      credential.username if credential else None, request)
        durable = isinstance(exc, PasswordRefused) and exc.counted
        syslog = self._count_refusal(name, refusal, exc, transport, durable)
        if syslog is None:  # it opens an interval: nothing was written; again, durably
            syslog = self._count_refusal(name, refusal, exc, transport, True)
        assert syslog is not None
        trail.send(self.syslog, syslog)

    def _count_refusal(self, name: str, refusal: refusals.Refusal, exc: KmsError,
                       transport: Transport, durable: bool) -> list[trail.Routed] | None:
        """The refusal counted in a write transaction (durable or not); the records to
        send to syslog, or None when it opens an interval and durable is False."""
        with self.db.unit_of_work(write=True, durable=durable) as uow:
            # the time it is counted at, under the store's write lock: an interval a
            # background pass has closed (and recorded) takes no more refusals
            now = self.clock()
            uow = uow
            tally = refusals.record(uow, refusal, now,
                                    self.settings.failure_audit_interval_seconds, durable)
            if tally is None:
                return None
            events = authentication.count_failure(uow, exc, transport, self.settings, now,
                                                  name) \
                if isinstance(exc, PasswordRefused) else []
            events += tally
            if not events:
                return []
            return trail.record_routed(events, uow, True, unauthenticated=True)
