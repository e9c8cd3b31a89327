"""The dispatch table (operation name -> handler) and the service entry point that runs
one operation: authenticate the caller, open the unit of work, call the handler, audit."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, NoReturn

from ..audit.chain import AuditChain
from ..audit.events import AuditEvent
from ..crypto.master_key import Keyring
from ..domain import backoff
from ..domain.errors import (ActionNotSupported, AuditQuotaExceeded, KmsError, PasswordRefused,
                             ReplayedMessage, StorageFull, UnknownSigner)
from ..domain.model import ClientState, Endpoint
from ..security.certificates import check_validity, fingerprint
from ..security.settings import SecuritySettings
from ..security.wssecurity import KeyRef, VerificationKey
from ..store.engine import Database, WriteNeeded
from ..store.repository import Repository
from ..store.space import SpaceGuard
from ..audit.syslog import SyslogSink
from . import (audit, authentication, capabilities, endpoints, identify, keys, random,
               refusals, subscriptions, transfer, update_list, wrapping_keys)
from . import audit_trail as trail
from .admin import handlers as admin
from .context import RequestContext, Transport
from .messages import AuthenticateRequest, Credential
from .pep_auth import reject_unused_proof
from .update_types import KEY_TYPES
from .ws_messages import UpdatePage

log = logging.getLogger("kms_ws.service")

Handler = Callable[[RequestContext, Any], Any]


@dataclass(frozen=True)
class Operation:
    handler: Handler
    writes: bool  # runs in a write transaction
    audited: bool  # success is a mandatory audit record (needs writes=True)
    durable: bool = True  # the commit reaches the disk before the answer
    # Reads, then records: the handler runs in a read-only unit of work and its deferred
    # writes and audit records commit in a short write transaction after it, so deliveries
    # on several workers do not queue behind SQLite's one write lock. A handler that does
    # write (GetKey by data that creates the key) is run again in a write transaction.
    # A signed request's replay-cache entry joins that write transaction: nothing is
    # answered before it commits, and a request that fails is remembered all the same.
    read_first: bool = False


OPERATIONS: dict[str, Operation] = {
    "RegisterEndpoint": Operation(endpoints.register_endpoint, True, True),
    "RegisterWrappingValues": Operation(wrapping_keys.register_wrapping_values, True, True),
    "Authenticate": Operation(authentication.authenticate, True, True),
    "NegotiateCapabilities": Operation(capabilities.negotiate_capabilities, False, False),
    "GetServerCapabilities": Operation(capabilities.get_server_capabilities, False, False),
    "CreateKey": Operation(keys.create_key, True, True),
    "StoreKey": Operation(keys.store_key, True, True),
    # GetKey writes: each delivery is an audit record and USE_BY tracking, in one commit
    # that survives a process crash but is not synced to disk on its own (a later durable
    # commit syncs it): a sync per delivery would cap deliveries at the disk's sync rate.
    "GetKey": Operation(keys.get_key, True, True, durable=False, read_first=True),
    "PushAuditMessage": Operation(audit.push_audit_message, True, True),
    "GetRandomBytes": Operation(random.get_random_bytes, False, False),
    "AdminCreate": Operation(admin.admin_create, True, True),
    "AdminGet": Operation(admin.admin_get, False, False),
    "AdminList": Operation(admin.admin_list, False, False),
    "AdminEdit": Operation(admin.admin_edit, True, True),
    "AdminDelete": Operation(admin.admin_delete, True, True),
    "AdminAssociate": Operation(admin.admin_associate, True, True),
    "AdminDisassociate": Operation(admin.admin_disassociate, True, True),
    "AdminAudit": Operation(admin.admin_audit, False, False),
    "AdminBindings": Operation(admin.admin_bindings, False, False),
    # Read-only: the call to the endpoint must not hold a write transaction open.
    "GetEndpointStatus": Operation(subscriptions.endpoint_status, False, False),
}

# WS-Management operations (kms_ws.wsman routes them by their WS-* action).
MANAGEMENT: dict[str, Operation] = {
    "Identify": Operation(identify.identify, False, False),
    # Like GetKey: a delivered value is an audit record and use tracking.
    "Transfer.Get": Operation(transfer.transfer_get, True, True, durable=False,
                              read_first=True),
    "Transfer.Create": Operation(transfer.transfer_create, True, True),
    "Transfer.Put": Operation(transfer.transfer_put, True, True),
    "Transfer.Delete": Operation(transfer.transfer_delete, True, True),
    "Enumeration.Enumerate": Operation(update_list.enumerate_updates, False, False),
    "Enumeration.Pull": Operation(update_list.pull, False, False),
    "Enumeration.Renew": Operation(update_list.renew, False, False),
    "Enumeration.GetStatus": Operation(update_list.get_status, False, False),
    "Enumeration.Release": Operation(update_list.release, False, False),
    "Eventing.Subscribe": Operation(subscriptions.subscribe, True, True),
    "Eventing.Renew": Operation(subscriptions.renew, True, True),
    "Eventing.Unsubscribe": Operation(subscriptions.unsubscribe, True, True),
}


_LOCAL = Transport(secure=False, loopback=True)  # an in-process caller

# Below the free-space watermark (store/space.py) operations that change something are
# refused; reads go on — deliveries too (their audit records use the reserve), and
# Authenticate (clients that read with a session credential keep their sessions).
_SERVED_WHEN_LOW = frozenset({"Authenticate"})


class _Replayed(Exception):
    """The signed request was seen before: its unit of work is rolled back."""


def _remembered(repo: Repository, cred: Credential, now: datetime) -> bool:
    """Enter a signed message in the replay cache; False when it was there (a replay)."""
    assert cred.signer_id and cred.message_digest and cred.accept_until
    return repo.remember_message(cred.signer_id, cred.message_digest, cred.accept_until, now)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class KmsService:
    """Runs operations. One per process; per-request state lives in RequestContext."""

    def __init__(self, db: Database, master: Keyring, settings: SecuritySettings,
                 clock: Callable[[], datetime] = utcnow,
                 syslog: SyslogSink | None = None, outbound: Any = None,
                 space: SpaceGuard | None = None) -> None:
        self.db = db
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
        op = OPERATIONS.get(name) or MANAGEMENT.get(name)
        if op is None:
            raise ActionNotSupported(f"no operation {name}")
        if isinstance(request, AuthenticateRequest) and request.request_type != "Logout" \
                and request.credential is not None:
            credential = request.credential  # Login/Validate the credential in the body
        now = self.clock()
        # refused below the free-space watermark (a delivery that would make a key, once
        # it turns out to: see _attempt)
        guarded = op.writes and not op.read_first and name not in _SERVED_WHEN_LOW
        signed = credential if credential is not None \
            and credential.message_digest is not None else None
        if signed is not None and not (op.read_first and signed.pep_proof is None):
            self._remember_message(name, signed, now)
            signed = None  # remembered: not again with the answer
        if credential is not None and credential.pep_proof is not None:
            # A PEP proof enters the replay cache in the request's own commit (a writer
            # from the start), and a request accepted on a PEP's proof is an audit record
            # (with the PEP).
            op = replace(op, writes=True, audited=True, read_first=False,
                         durable=op.durable and op.writes)
        box: dict[str, Any] = {}
        try:
            try:
                result, events, policies, syslog = self._attempt(
                    op, name, credential, request, request_id, now, box,
                    transport, signed, guarded)
            except _Replayed:
                raise
            except Exception:
                if signed is not None and not box.get("remembered"):
                    self._remember(signed, now)  # a failed request is remembered too
                raise
        except _Replayed:
            self._replayed(name, signed, now)  # type: ignore[arg-type]
        except KmsError as exc:
            if isinstance(exc, StorageFull) and self.space is not None:
                self.space.report(exc.reason)
            caller = box["ctx"].caller if "ctx" in box else None
            if caller is None:
                self._refused(name, credential, transport, request, exc)
            else:
                self._failed(name, caller, now, request, exc)
            raise
        ctx = box["ctx"]
        trail.send(self.syslog, syslog)
        if not op.writes and not op.audited:
            self._optional(events, policies)
        if ctx.caller.failed_auth or ctx.caller.state is ClientState.LOCKED:
            # a right credential: the count of wrong ones goes (a lockout run out ends)
            with self.db.transaction(write=True) as conn:
                Repository(conn).reset_auth_failures(
                    ctx.caller.endpoint_id,
                    backoff.locked_before(now, self.settings.lockout_seconds))
        return result

    def _attempt(self, op: Operation, name: str, credential: Credential | None, request: Any,
                 request_id: str, now: datetime, box: dict[str, Any],
                 transport: Transport = _LOCAL, signed: Credential | None = None,
                 guarded: bool = False) -> tuple[Any, list[AuditEvent], list, list]:  # type: ignore[type-arg]
        """Authenticate and run the handler in one unit of work with its deferred writes
        and audit records (or, for read_first operations, read then record: see
        Operation). box receives the context (the caller, for failure audits). signed: a
        signed request not yet in the replay cache (read_first operations only); box
        notes when it was entered. guarded: a change, refused (once the caller is known)
        below the free-space watermark."""
        if op.read_first:
            try:
                return self._read_then_record(op, name, credential, request, request_id,
                                              now, box, transport, signed)
            except WriteNeeded:
                guarded = True  # nothing was committed: run it as a writer (a change)
            if signed is not None:
                self._remember(signed, now)
                box["remembered"] = True
        with self.db.transaction(write=op.writes, durable=op.durable) as conn:
            ctx = self._context(conn, credential, request_id, now, box, transport)
            if guarded and self.space is not None:
                self.space.check()
            result = op.handler(ctx, request)
            reject_unused_proof(ctx)
            for write in ctx.deferred:
                write(ctx.repo)
            events = trail.success_events(name, ctx.caller, now, request, result)
            policies = trail.enforcing_policies(ctx.repo)
            # PushAuditMessage stores the pushed messages itself (with their times).
            syslog = trail.record(events, ctx.repo, op.audited, policies,
                                  local_done=not op.writes or name == "PushAuditMessage")
        return result, events, policies, syslog

    def _read_then_record(self, op: Operation, name: str, credential: Credential | None,
                          request: Any, request_id: str, now: datetime,
                          box: dict[str, Any], transport: Transport,
                          signed: Credential | None
                          ) -> tuple[Any, list[AuditEvent], list, list]:  # type: ignore[type-arg]
        with self.db.transaction(read_only=True) as conn:
            ctx = self._context(conn, credential, request_id, now, box, transport)
            result = op.handler(ctx, request)
            events = trail.success_events(name, ctx.caller, now, request, result)
            # the audit policies in force where the request was served (its snapshot)
            policies = trail.enforcing_policies(ctx.repo)
        # The answer is only given once its audit record and use tracking are committed
        # (and, for a signed request, its replay-cache entry: a replay is refused here).
        with self.db.transaction(write=True, durable=op.durable) as conn:
            repo = Repository(conn)
            if signed is not None and not _remembered(repo, signed, now):
                raise _Replayed
            for write in ctx.deferred:
                write(repo)
            syslog = trail.record(events, repo, op.audited, policies, local_done=False)
        return result, events, policies, syslog

    def _context(self, conn: Any, credential: Credential | None, request_id: str,
                 now: datetime, box: dict[str, Any],
                 transport: Transport) -> RequestContext:
        """The request's context on this unit of work, with its authenticated caller."""
        ctx = box["ctx"] = RequestContext(None, Repository(conn), now, request_id,
                                          self.settings, self.master, self.outbound,
                                          transport=transport,
                                          pep_proof=credential.pep_proof
                                          if credential is not None else None)
        ctx.caller = authentication.authenticate_caller(ctx, credential, self.passwords)
        return ctx

    def acknowledge_updates(self, page: UpdatePage) -> int:
        """The client received the final page of a GetUpdateList: pending UpdatePending
        notifications up to its snapshot are acknowledged (§6.11)."""
        if not page.acknowledges:
            return 0
        # a list of keys acknowledges key notifications; a custom type's, its own
        types = KEY_TYPES if page.token_type in KEY_TYPES else (page.token_type,)
        with self.db.transaction(write=True) as conn:
            return Repository(conn).updates.acknowledge(page.caller_id, page.high, page.pep_id,
                                                        types=types)

    def _failed(self, name: str, caller: Endpoint, now: datetime, request: Any,
                exc: KmsError) -> None:
        """A refused or failed request of a known caller is a mandatory audit record, in
        its own transaction (the request's own changes were rolled back)."""
        event = trail.failure_event(name, caller, now, request, exc)
        with self.db.transaction(write=True) as conn:
            repo = Repository(conn)
            if isinstance(exc, AuditQuotaExceeded) and \
                    not audit.refusal_recorded(repo, caller, exc, now):
                return  # counted: the minute's refusals become one record
            syslog = trail.record([event], repo, True, trail.enforcing_policies(repo))
        trail.send(self.syslog, syslog)

    def refuse(self, name: str, signer_id: str, exc: KmsError) -> None:
        """A signed request refused by the transport after its signature verified (a
        header left unsigned or given twice): an audit record of its signer."""
        now = self.clock()
        with self.db.transaction() as conn:
            signer = Repository(conn).get_endpoint(signer_id)
        self._failed(name, signer, now, None, exc)

    def _optional(self, events: list[AuditEvent], policies: list) -> None:  # type: ignore[type-arg]
        """Reads that an audit policy asks to record locally."""
        if not policies:
            return
        with self.db.transaction(write=True, durable=False) as conn:
            trail.record(events, Repository(conn), False, policies)

    def signer_key(self, ref: KeyRef) -> VerificationKey:
        """The registered key a message signature names (for the transport layer).
        Certificate look-ups are remembered for a minute per process; the signer's
        endpoint (state, realms) is still read on every request."""
        now = self.clock()
        slot = fingerprint(ref.certificate) if ref.certificate is not None else None
        hit = self._signer_keys.get(slot) if slot else None
        if hit is not None and hit[0] > time.monotonic():
            check_validity(hit[1].cert, now)  # type: ignore[arg-type]
            return hit[1]
        with self.db.transaction() as conn:
            key = authentication.signer_key(Repository(conn), self.master, ref, now)
        if slot:
            if len(self._signer_keys) >= 10_000:
                self._signer_keys.clear()
            self._signer_keys[slot] = (time.monotonic() + 60, key)
        return key

    def certificate_client(self, cert_der: bytes) -> str:
        """The client a TLS client certificate is registered to (AsymmetricKey)."""
        with self.db.transaction() as conn:
            row = Repository(conn).endpoint_credential(cert_sha256=fingerprint(cert_der))
        if row is None or row.certificate != cert_der:
            raise UnknownSigner("the TLS client certificate is not registered")
        return str(row.endpoint_id)

    def _remember_message(self, name: str, cred: Credential, now: datetime) -> None:
        """The replay cache, shared through the store: a signed message is accepted once."""
        try:
            self._remember(cred, now)
        except _Replayed:
            self._replayed(name, cred, now)

    def _remember(self, cred: Credential, now: datetime) -> None:
        with self.db.transaction(write=True, durable=False) as conn:
            if not _remembered(Repository(conn), cred, now):
                raise _Replayed

    def _replayed(self, name: str, cred: Credential, now: datetime) -> NoReturn:
        """A replay is a mandatory audit record (durable, and to syslog as policies say)."""
        with self.db.transaction(write=True) as conn:
            repo = Repository(conn)
            ep = repo.get_endpoint(cred.signer_id)
            event = AuditEvent(now, name, "Replay", "Denied", cred.signer_id,
                               ep.name if ep else None,
                               message="a signed message was presented again")
            syslog = trail.record([event], repo, True, trail.enforcing_policies(repo))
        trail.send(self.syslog, syslog)
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
        try:
            syslog = self._count_refusal(name, refusal, exc, transport, durable)
        except refusals.FirstOfInterval:
            syslog = self._count_refusal(name, refusal, exc, transport, True)
        trail.send(self.syslog, syslog)

    def _count_refusal(self, name: str, refusal: refusals.Refusal, exc: KmsError,
                       transport: Transport, durable: bool) -> list[AuditEvent]:
        with self.db.transaction(write=True, durable=durable) as conn:
            # the time it is counted at, under the store's write lock: an interval a
            # background pass has closed (and recorded) takes no more refusals
            now = self.clock()
            repo = Repository(conn)
            events = authentication.count_failure(repo, exc, transport, self.settings, now,
                                                  name) \
                if isinstance(exc, PasswordRefused) else []
            events += refusals.record(repo, refusal, now,
                                      self.settings.failure_audit_interval_seconds, durable)
            if not events:
                return []
            return trail.record(events, repo, True, trail.enforcing_policies(repo))
