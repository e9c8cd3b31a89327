"""§6.2 Authenticate, and authentication of the caller of every other operation.

Passwords are checked with scrypt (slow on purpose); a verified (user, password) pair is
remembered in this process, keyed by an HMAC under a per-process secret, so a client
presenting HTTP Basic on every request is not re-hashed each time. The endpoint's row is
still read per request: a disabled client or a changed password takes effect at once.

A user name and password that do not authenticate get one answer (PasswordRefused) at
one cost, whatever the reason: an unknown name, a client without a password, a locked or
disabled client (its password is not checked: a decoy scrypt is computed instead, so a
guess cannot be confirmed) and a wrong password each cost one scrypt of the same
parameters. Before any of that, a user name or source barred by the backoff is refused
unchecked (domain.backoff; the counts live in the store, shared by every worker and
node). The dispatcher counts each refusal (count_failure) in its own transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import datetime, timedelta
from threading import Lock
from typing import Any

from cryptography import x509

from ..audit.events import AuditEvent
from ..crypto.master_key import Keyring
from ..crypto.passwords import verify_decoy, verify_password
from ..crypto.sealing import unseal_secret
from ..domain import backoff
from ..domain.errors import (
    AccessDenied,
    CredentialRequired,
    InvalidCredentials,
    PasswordRefused,
    UnknownSigner,
    UnsupportedAuthenticationMode,
)
from ..domain.model import (
    SIGNED_CREDENTIALS,
    SUPPORTED_CREDENTIALS,
    CredentialType,
    Endpoint,
    EndpointKind,
)
from ..security.certificates import check_validity, fingerprint
from ..security.proofs import KeyRef, VerificationKey, secret_fingerprint
from ..security.settings import SecuritySettings
from . import subscription_end
from .context import RequestContext, Transport
from .credentials import require_private_channel
from .messages import AuthenticateRequest, AuthenticateResult, Credential, VerifiedSignature
from .ports import UnitOfWork

SUPPORTED = tuple(t.value for t in SUPPORTED_CREDENTIALS)
SIGNED = SIGNED_CREDENTIALS


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


class PasswordCache:
    def __init__(self, ttl_seconds: int, max_entries: int = 10_000) -> None:
        self._secret = secrets.token_bytes(32)
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: dict[bytes, tuple[str, str, float]] = {}
        self._lock = Lock()

    def _slot(self, username: str, password: str) -> bytes:
        return hmac.new(self._secret, f"{username}\0{password}".encode(),
                        hashlib.sha256).digest()

    def hit(self, username: str, password: str, ep: Endpoint) -> bool:
        entry = self._entries.get(self._slot(username, password))
        return bool(entry and entry[0] == ep.endpoint_id and entry[1] == ep.password_hash
                    and entry[2] > time.monotonic())

    def remember(self, username: str, password: str, ep: Endpoint) -> None:
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[self._slot(username, password)] = (
                ep.endpoint_id, ep.password_hash or "", time.monotonic() + self._ttl)


def authenticate_caller(ctx: RequestContext, cred: Credential | None,
                        cache: PasswordCache) -> Endpoint:
    """The endpoint a credential proves, in the request's unit of work, or a refusal
    (a refused password the dispatcher counts against the name, the source and the
    client, in its own transaction; enough of them lock it). Where signatures are
    required (server-wide or for one of the caller's realms), only a signed message
    authenticates."""
    if cred is None:
        raise CredentialRequired("this operation requires a credential (a signed message, "
                                 "HTTP Basic or a session)")
    # a TLS client certificate that no client registered is refused before anything else
    certified = _certificate_owner(ctx, cred.peer_certificate) \
        if cred.signature is None and cred.peer_certificate is not None else None
    if cred.signature is None and ctx.settings.require_signature:
        raise AccessDenied("every client must sign its requests (WS-Security)")
    if cred.type is CredentialType.USERNAME_PASSWORD:
        require_private_channel(ctx, "a password")  # unchecked and uncounted
    ep = _endpoint(ctx, cred, cache, certified)
    if cred.signature is None and ctx.settings.signature_required(ep.realms):
        raise AccessDenied("this client must sign its requests (WS-Security)")
    return ep


def _endpoint(ctx: RequestContext, cred: Credential, cache: PasswordCache,
              certified: str | None) -> Endpoint:
    if cred.type is CredentialType.SESSION:
        return _session_endpoint(ctx, cred.token or "")
    if cred.type in SIGNED:
        if cred.signature is not None:
            return _signer_endpoint(ctx, cred.signature, cred.type)
        if certified is None:
            raise UnsupportedAuthenticationMode(
                f"a {cred.type.value} credential is proven by signing the message "
                "(WS-Security) or by a TLS client certificate, not by sending it",
                supported=SUPPORTED)
        return _client(ctx, certified)
    if cred.type is not CredentialType.USERNAME_PASSWORD:
        raise UnsupportedAuthenticationMode(
            f"credential type {cred.type.value} is not supported", supported=SUPPORTED)
    return _password_endpoint(ctx, cred.username or "", cred.password or "", cache)


def _password_endpoint(ctx: RequestContext, username: str, password: str,
                       cache: PasswordCache) -> Endpoint:
    strikes = ctx.uow.refusals.strikes(*strike_keys(username, ctx.transport))
    if any(s.bars(ctx.now) for s in strikes.values()):
        raise PasswordRefused("backoff", username)  # unchecked, at no cost
    ep = ctx.uow.endpoints.find_client(username)
    if ep is None or ep.password_hash is None:
        verify_decoy(password)
        raise PasswordRefused("unknown user", username)
    if not backoff.may_authenticate(ep, ctx.now, ctx.settings.lockout_seconds):
        verify_decoy(password)  # a locked client checks nothing
        state = backoff.effective_state(ep, ctx.now, ctx.settings.lockout_seconds)
        raise PasswordRefused(f"client {state.value.lower()}", username, ep.endpoint_id)
    if ctx.settings.signature_required(ep.realms):
        verify_decoy(password)  # nor does one that must sign: no password is accepted
        raise PasswordRefused("client must sign", username, ep.endpoint_id)
    if cache.hit(username, password, ep):
        return ep
    if not verify_password(password, ep.password_hash):
        raise PasswordRefused("wrong password", username, ep.endpoint_id)
    cache.remember(username, password, ep)
    return ep


def strike_keys(username: str, transport: Transport) -> tuple[str, str]:
    """The backoff keys of a user name and of the request's source."""
    return _strike_key("name", username), _strike_key("source", transport.source)


def _strike_key(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}\0{value}".encode("utf-8", "replace")).hexdigest()


def count_failure(uow: UnitOfWork, exc: PasswordRefused, transport: Transport,
                  settings: SecuritySettings, now: datetime, operation: str
                  ) -> list[AuditEvent]:
    """Count a refused password against its user name and its source (backoff) and, a
    wrong one, against the client (lockout). A refusal in backoff is not counted.
    Returns the audit event of a lockout it causes."""
    if not exc.counted:
        return []
    name_key, source_key = strike_keys(exc.username, transport)
    found = uow.refusals.strikes(name_key, source_key)
    for key, start_after in ((name_key, settings.backoff_after_failed_authentications),
                             (source_key, settings.source_backoff_after_failed_authentications)):
        uow.refusals.set_strikes(key, backoff.after_failure(
            found.get(key), now, start_after, settings.failure_memory_seconds,
            settings.backoff_max_seconds))
    if exc.why != "wrong password" or exc.endpoint_id is None or not \
            uow.endpoints.record_auth_failure(exc.endpoint_id,
                                              settings.lock_after_failed_authentications,
                                     now):
        return []
    subscription_end.review(uow, exc.endpoint_id, now)  # locked: they end
    until = (f"until {(now + timedelta(seconds=settings.lockout_seconds)).isoformat()}Z"
             if settings.lockout_seconds else "until an administrator unlocks it")
    return [AuditEvent(now, operation, "ClientLocked", "Denied", exc.endpoint_id,
                       exc.username, message=f"locked after "
                       f"{settings.lock_after_failed_authentications} wrong passwords, {until}")]


def strikes_forgotten(settings: SecuritySettings, now: datetime) -> tuple[datetime, datetime]:
    """(last failure before, now): backoff counts that bar nothing any more and would be
    forgotten at their next failure anyway, which the store may drop."""
    return now - timedelta(seconds=settings.failure_memory_seconds), now


def clear_name_strikes(uow: UnitOfWork, username: str) -> None:
    """An unlocked client's name starts afresh (its source's counts stay)."""
    uow.refusals.clear_strikes(_strike_key("name", username))


def _check_active(ctx: RequestContext, ep: Endpoint) -> None:
    """A session or a signature proved who the caller is: it may learn its state."""
    if not backoff.may_authenticate(ep, ctx.now, ctx.settings.lockout_seconds):
        state = backoff.effective_state(ep, ctx.now, ctx.settings.lockout_seconds)
        raise InvalidCredentials(f"client {ep.name} is {state.value.lower()}")


def _client(ctx: RequestContext, endpoint_id: str) -> Endpoint:
    """The registered, active client a signature or a TLS client certificate proves."""
    ep = ctx.uow.endpoints.get_endpoint(endpoint_id)
    if ep is None or ep.kind is not EndpointKind.CLIENT:
        raise UnknownSigner("the signer is not a registered KMS client")
    _check_active(ctx, ep)
    return ep


def _signer_endpoint(ctx: RequestContext, signature: VerifiedSignature,
                     kind: CredentialType) -> Endpoint:
    """The client whose registered key verified the message: read again here, in the
    request's unit of work, with the key it holds now. A client deleted, disabled or
    locked, or a key replaced or removed, since the transport looked the key up (or
    since the worker remembered a certificate's key) is refused."""
    ep = ctx.uow.endpoints.get_endpoint(signature.signer_id)
    if ep is None or ep.kind is not EndpointKind.CLIENT:
        raise UnknownSigner("the signer is not a registered KMS client")
    row = ctx.uow.endpoints.endpoint_credential(endpoint_id=ep.endpoint_id)
    if row is None or not hmac.compare_digest(
            _fingerprint(ctx.master, row).encode(), signature.key_fingerprint.encode()):
        raise UnknownSigner("the signing secret is no longer registered"
                            if kind is CredentialType.SYMMETRIC_KEY
                            else "the signing certificate is no longer registered")
    _check_active(ctx, ep)
    return ep


def _certificate_owner(ctx: RequestContext, cert_der: bytes) -> str:
    """The endpoint a TLS client certificate is registered to (AsymmetricKey)."""
    row = ctx.uow.endpoints.endpoint_credential(cert_sha256=fingerprint(cert_der))
    if row is None or row.certificate != cert_der:
        raise UnknownSigner("the TLS client certificate is not registered")
    return str(row.endpoint_id)


def verification_key(uow: UnitOfWork, master: Keyring, ref: KeyRef,
                     now: datetime) -> VerificationKey:
    """The registered key a message signature names: a certificate sent as a token (looked
    up by fingerprint), or the AsymmetricKey/SymmetricKey credential of an endpoint name."""
    if ref.thumbprint is not None:
        raise UnknownSigner("a request names its signing certificate by sending it "
                            "(BinarySecurityToken) or by the endpoint's name (KeyName), "
                            "not by a thumbprint")
    if ref.certificate is not None:
        row = uow.endpoints.endpoint_credential(cert_sha256=fingerprint(ref.certificate))
        if row is None or row.certificate != ref.certificate:
            raise UnknownSigner("the signing certificate is not registered")
    else:
        found = [ep for ep in uow.endpoints.find_endpoints(ref.key_name or "")
                 if ep.credential_type in SIGNED]
        row = uow.endpoints.endpoint_credential(endpoint_id=found[0].endpoint_id) \
            if len(found) == 1 else None
        if row is None:
            raise UnknownSigner(f"no signing credential is registered as {ref.key_name!r}")
    return credential_key(master, row, now)


def credential_key(master: Keyring, row: Any, now: datetime) -> VerificationKey:
    """The verification key of a registered signing credential (endpoint_credential row)."""
    if row.certificate is not None:
        cert = x509.load_der_x509_certificate(row.certificate)
        check_validity(cert, now)
        return VerificationKey(row.endpoint_id, cert=cert, fingerprint=row.cert_sha256)
    secret = _secret(master, row)
    return VerificationKey(row.endpoint_id, hmac_key=secret,
                           fingerprint=secret_fingerprint(secret))


def _secret(master: Keyring, row: Any) -> bytes:
    return unseal_secret(master.aead_for(row.master_key_id), row.endpoint_id,
                         row.sealed_secret)


def _fingerprint(master: Keyring, row: Any) -> str:
    """The fingerprint of a registered signing credential (VerificationKey.fingerprint)."""
    if row.certificate is not None:
        return str(row.cert_sha256)
    return secret_fingerprint(_secret(master, row))


def _session_endpoint(ctx: RequestContext, token: str) -> Endpoint:
    found = ctx.uow.endpoints.session_endpoint(token_hash(token), ctx.now)
    ep = ctx.uow.endpoints.get_endpoint(found[0]) if found else None
    if ep is None:
        raise InvalidCredentials("the session credential is unknown, expired or revoked")
    _check_active(ctx, ep)
    return ep


def authenticate(ctx: RequestContext, req: AuthenticateRequest) -> AuthenticateResult:
    """Login: a new session credential. Validate: is the credential good. Logout: revoke
    the session presented (in the body, or the one this request came with)."""
    caller = ctx.caller
    assert caller is not None  # the dispatcher authenticated the credential presented
    if req.request_type == "Login":
        if caller.kind is not EndpointKind.CLIENT:
            raise UnsupportedAuthenticationMode("only KMS clients open sessions")
        token = secrets.token_urlsafe(32)
        expires = ctx.now + timedelta(seconds=ctx.settings.session_ttl_seconds)
        ctx.uow.endpoints.insert_session(token_hash(token), caller.endpoint_id, ctx.now, expires)
        return AuthenticateResult(caller, token, expires)
    if req.request_type == "Logout":
        cred = req.credential
        if cred is None or cred.type is not CredentialType.SESSION or not cred.token:
            raise UnsupportedAuthenticationMode("Logout takes the session credential to revoke")
        found = ctx.uow.endpoints.session_endpoint(token_hash(cred.token), ctx.now)
        if found is None or found[0] != caller.endpoint_id:
            raise InvalidCredentials("the session credential is unknown, expired or revoked")
        ctx.uow.endpoints.revoke_session(token_hash(cred.token))
    return AuthenticateResult(caller)
