"""How handler tests present themselves to KmsService.run: credentials and transports,
built in this one place (a change to service.messages.Credential or to Transport is
fixed here, not in every test)."""

from __future__ import annotations

from kms_ws.domain.model import CredentialType
from kms_ws.service.context import Transport
from kms_ws.service.messages import AuthenticateRequest, Credential

TLS = Transport(secure=True, loopback=False, remote_addr="192.0.2.10")
PLAIN_HTTP = Transport(secure=False, loopback=False, remote_addr="192.0.2.10")
LOOPBACK_HTTP = Transport(secure=False, loopback=True, remote_addr="127.0.0.1")


def password(name: str, secret: str) -> Credential:
    """A user name and password (HTTP Basic, or a header or body credential)."""
    return Credential(CredentialType.USERNAME_PASSWORD, username=name, password=secret)


def session(token: str | None) -> Credential:
    return Credential(CredentialType.SESSION, token=token)


def login(name: str, secret: str) -> AuthenticateRequest:
    return AuthenticateRequest("Login", password(name, secret))


def validate(name: str, secret: str) -> AuthenticateRequest:
    return AuthenticateRequest("Validate", password(name, secret))


def logout() -> AuthenticateRequest:
    return AuthenticateRequest("Logout")
