"""§6.2 Authenticate, and authentication of the caller of every other operation.

Passwords are checked with scrypt (slow on purpose); a verified (user, password) pair is
remembered in this process, keyed by an HMAC under a per-process secret, so a client
presenting HTTP Basic on every request is not re-hashed each time. The endpoint's row is
still read per request: a disabled client or a changed password takes effect at once.
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

from ..crypto.master_key import Keyring
from ..crypto.passwords import verify_password
from ..crypto.sealing import unseal_secret
from ..domain.errors import (AccessDenied, CredentialRequired, InvalidCredentials,
                             UnknownSigner, UnsupportedAuthenticationMode)
from ..domain.model import (SIGNED_CREDENTIALS, ClientState, CredentialType, Endpoint,
                            EndpointKind)
from ..security.certificates import check_validity, fingerprint
from ..security.wssecurity import KeyRef, VerificationKey
from ..store.repository import Repository
from .context import RequestContext
from .messages import AuthenticateRequest, AuthenticateResult, Credential

SUPPORTED = tuple(t.value for t in (CredentialType.USERNAME_PASSWORD, CredentialType.SESSION,
                                    CredentialType.ASYMMETRIC_KEY, CredentialType.SYMMETRIC_KEY))
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
        return hmac.new(self._secret, f"{username}\0{password}".encode("utf-8"),
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
    """The endpoint a credential proves, or InvalidCredentials (which the dispatcher counts
    against the client, in its own transaction; enough of them lock it). Where signatures
    are required (server-wide or for one of the caller's realms), only a signed message
    authenticates."""
    if cred is None:
        raise CredentialRequired("this operation requires a credential (a signed message, "
                                 "HTTP Basic or a session)")
    ep = _endpoint(ctx, cred, cache)
    if cred.message_digest is None and ctx.settings.signature_required(ep.realms):
        raise AccessDenied("this client must sign its requests (WS-Security)")
    return ep


def _endpoint(ctx: RequestContext, cred: Credential, cache: PasswordCache) -> Endpoint:
    if cred.type is CredentialType.SESSION:
        return _session_endpoint(ctx, cred.token or "")
    if cred.type in SIGNED:
        return _signer_endpoint(ctx, cred)
    if cred.type is not CredentialType.USERNAME_PASSWORD:
        raise UnsupportedAuthenticationMode(
            f"credential type {cred.type.value} is not supported", supported=SUPPORTED)
    username, password = cred.username or "", cred.password or ""
    ep = ctx.repo.find_client(username)
    if ep is None or ep.password_hash is None:
        raise InvalidCredentials("unknown user name or wrong password")
    if cache.hit(username, password, ep):
        _check_active(ep)
        return ep
    if not verify_password(password, ep.password_hash):
        raise InvalidCredentials("unknown user name or wrong password")
    _check_active(ep)
    cache.remember(username, password, ep)
    return ep


def _check_active(ep: Endpoint) -> None:
    if ep.state not in (ClientState.ACTIVE, ClientState.AUTHENTICATED):
        raise InvalidCredentials(f"client {ep.name} is {ep.state.value.lower()}")


def _signer_endpoint(ctx: RequestContext, cred: Credential) -> Endpoint:
    if cred.signer_id is None:
        raise UnsupportedAuthenticationMode(
            f"a {cred.type.value} credential is proven by signing the message (WS-Security) "
            "or by a TLS client certificate, not by sending it", supported=SUPPORTED)
    ep = ctx.repo.get_endpoint(cred.signer_id)
    if ep is None or ep.kind is not EndpointKind.CLIENT:
        raise UnknownSigner("the signer is not a registered KMS client")
    if cred.signer_cert_sha256 is not None:  # replaced or removed since it was looked up?
        row = ctx.repo.endpoint_credential(cert_sha256=cred.signer_cert_sha256)
        if row is None or row.endpoint_id != ep.endpoint_id:
            raise UnknownSigner("the signing certificate is no longer registered")
    _check_active(ep)
    return ep


def signer_key(repo: Repository, master: Keyring, ref: KeyRef, now: datetime) -> VerificationKey:
    """The registered key a message signature names: a certificate sent as a token (looked
    up by fingerprint), or the AsymmetricKey/SymmetricKey credential of an endpoint name."""
    if ref.certificate is not None:
        row = repo.endpoint_credential(cert_sha256=fingerprint(ref.certificate))
        if row is None or row.certificate != ref.certificate:
            raise UnknownSigner("the signing certificate is not registered")
    else:
        found = [ep for ep in repo.find_endpoints(ref.key_name or "")
                 if ep.credential_type in SIGNED]
        row = repo.endpoint_credential(endpoint_id=found[0].endpoint_id) \
            if len(found) == 1 else None
        if row is None:
            raise UnknownSigner(f"no signing credential is registered as {ref.key_name!r}")
    return credential_key(master, row, now)


def credential_key(master: Keyring, row: Any, now: datetime) -> VerificationKey:
    """The verification key of a registered signing credential (endpoint_credential row)."""
    if row.certificate is not None:
        cert = x509.load_der_x509_certificate(row.certificate)
        check_validity(cert, now)
        return VerificationKey(row.endpoint_id, cert=cert, cert_sha256=row.cert_sha256)
    return VerificationKey(row.endpoint_id,
                           hmac_key=unseal_secret(master.aead_for(row.master_key_id),
                                                        row.endpoint_id, row.sealed_secret))


def _session_endpoint(ctx: RequestContext, token: str) -> Endpoint:
    found = ctx.repo.session_endpoint(token_hash(token), ctx.now)
    ep = ctx.repo.get_endpoint(found[0]) if found else None
    if ep is None:
        raise InvalidCredentials("the session credential is unknown, expired or revoked")
    _check_active(ep)
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
        ctx.repo.insert_session(token_hash(token), caller.endpoint_id, ctx.now, expires)
        return AuthenticateResult(caller, token, expires)
    if req.request_type == "Logout":
        cred = req.credential
        if cred is None or cred.type is not CredentialType.SESSION or not cred.token:
            raise UnsupportedAuthenticationMode("Logout takes the session credential to revoke")
        found = ctx.repo.session_endpoint(token_hash(cred.token), ctx.now)
        if found is None or found[0] != caller.endpoint_id:
            raise InvalidCredentials("the session credential is unknown, expired or revoked")
        ctx.repo.revoke_session(token_hash(cred.token))
    return AuthenticateResult(caller)
