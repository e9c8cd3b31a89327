"""§4.7.1 a client's {CREDENTIAL_LENGTH, CREDENTIAL_VALUE} tuples and §4.6 a PEP's
AUTHENTICATION_VALUES as an administrator sets them, and the signing credentials
(AsymmetricKey: an X.509 certificate; SymmetricKey: an HMAC-SHA256 secret) they register.

A tuple's Value is the credential's bytes in base64, its Length their count. An element
holding no tuple removes the credential. Secrets are kept hashed (passwords: scrypt) or
sealed under the master key (HMAC secrets); they are never returned, logged or audited.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from ..crypto.passwords import hash_password
from ..crypto.sealing import seal_secret
from ..domain.errors import AccessDenied, AlreadyExists, InvalidParameter
from ..domain.model import CredentialType
from ..security.certificates import (
    MIN_HMAC_KEY_BYTES,
    der,
    fingerprint,
    load_certificate,
)
from .admin.messages import Document
from .context import RequestContext

# The credential types whose value is a secret: whoever reads it on the wire holds it.
SECRET_TYPES = (CredentialType.USERNAME_PASSWORD, CredentialType.SYMMETRIC_KEY)


def require_private_channel(ctx: RequestContext, what: str) -> None:
    """A secret (a password anywhere in a request, an HMAC secret being registered) crosses
    the network only over TLS, unless the operator allowed plain HTTP for local use
    (allow_basic_over_http). A signature does not hide a Body: signed is not private.
    Called before the secret is checked or anything changes."""
    if not ctx.transport.secure and not ctx.settings.allow_basic_over_http:
        raise AccessDenied(f"{what} is refused over plain HTTP: use HTTPS (for local use "
                           "only, the server allows it when started with 'kms-ws serve "
                           "--allow-basic-over-http' or with security.allow_basic_over_http "
                           "in kms-ws.json)")


@dataclass(frozen=True)
class NewCredential:
    """A credential an edit sets; value None: the endpoint's credential is removed."""

    type: CredentialType
    value: bytes | None = field(default=None, repr=False)


def from_tuples(ctx: RequestContext, doc: Document, element: str,
                cred_type: CredentialType) -> NewCredential | None:
    """The credential of type `cred_type` that `doc`'s `element` sets (None: untouched)."""
    if element not in doc:
        return None
    box = doc[element]
    values = box.get("CredentialValue", []) if isinstance(box, dict) else []
    if not values:
        return NewCredential(cred_type)
    if cred_type in SECRET_TYPES:
        require_private_channel(ctx, f"a {cred_type.value} credential")
    if len(values) != 1:
        raise InvalidParameter(f"{element}: a {cred_type.value} credential is exactly one "
                               "CredentialValue")
    value = _value(values[0], element)
    check(cred_type, value, element)
    return NewCredential(cred_type, value)


def _value(item: Document, element: str) -> bytes:
    try:
        raw = base64.b64decode(item.get("Value", ""), validate=True)
    except binascii.Error:
        raise InvalidParameter(f"{element}: the CredentialValue is not base64") from None
    if str(len(raw)) != str(item.get("Length")).strip():
        raise InvalidParameter(f"{element}: CredentialValue Length {item.get('Length')} does "
                               f"not match its {len(raw)}-byte value")
    return raw


def check(cred_type: CredentialType, value: bytes, element: str = "Credential") -> None:
    """A password of 8 to 1024 UTF-8 characters (the bounds of UsernamePassword/Password),
    an HMAC secret of at least 32 bytes, or a certificate (DER or PEM)."""
    if cred_type is CredentialType.USERNAME_PASSWORD:
        try:
            password = value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidParameter(f"{element}: a password is UTF-8 text") from None
        if not 8 <= len(password) <= 1024:
            raise InvalidParameter(f"{element}: a password has 8 to 1024 characters")
    elif cred_type is CredentialType.SYMMETRIC_KEY:
        if len(value) < MIN_HMAC_KEY_BYTES:
            raise InvalidParameter(f"{element}: a symmetric credential has at least "
                                   f"{MIN_HMAC_KEY_BYTES} bytes")
    elif cred_type is CredentialType.ASYMMETRIC_KEY:
        load_certificate(value)
    else:
        raise InvalidParameter(f"{element}: {cred_type.value} credentials are not kept here")


def replace(ctx: RequestContext, endpoint_id: str, new: NewCredential) -> None:
    """Set (or remove) an endpoint's credential: from now on only the new one works."""
    if new.type is CredentialType.USERNAME_PASSWORD:
        ctx.uow.endpoints.set_password_hash(endpoint_id, hash_password(new.value.decode("utf-8"))
                                            if new.value is not None else None)
        return
    ctx.uow.endpoints.delete_endpoint_credential(endpoint_id)
    if new.value is not None:
        register_signing(ctx, endpoint_id, new.type, new.value)


def register_signing(ctx: RequestContext, endpoint_id: str, cred_type: CredentialType,
                     value: bytes) -> None:
    """AsymmetricKey: an X.509 certificate (DER or PEM), unique to this endpoint.
    SymmetricKey: an HMAC-SHA256 secret of at least 32 bytes, sealed at rest."""
    check(cred_type, value)
    if cred_type is CredentialType.ASYMMETRIC_KEY:
        cert_der = der(load_certificate(value))
        sha = fingerprint(cert_der)
        if ctx.uow.endpoints.certificate_taken(sha):
            raise AlreadyExists("this certificate is registered to another endpoint")
        ctx.uow.endpoints.insert_endpoint_credential(endpoint_id, cred_type, certificate=cert_der,
                                                     cert_sha256=sha)
        return
    master_id, aead = ctx.sealing_key()
    ctx.uow.endpoints.insert_endpoint_credential(
        endpoint_id, cred_type, sealed_secret=seal_secret(aead, endpoint_id, value),
        master_key_id=master_id)


def registered_type(ctx: RequestContext, endpoint_id: str) -> CredentialType | None:
    """The type of an endpoint's registered signing credential, if it has one."""
    row = ctx.uow.endpoints.endpoint_credential(endpoint_id=endpoint_id)
    return CredentialType(row.credential_type) if row is not None else None
