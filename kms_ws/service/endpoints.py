"""§6.1 RegisterEndpoint: a KMS client (by an administrator) or a PEP (by its client)."""

from __future__ import annotations

import uuid

from ..crypto.passwords import hash_password
from ..domain.errors import (AlreadyExists, InvalidParameter, PermissionDenied,
                             UnsupportedAuthenticationMode)
from ..domain.model import PEP_AUTH_NONE, ClientState, CredentialType, Endpoint, EndpointKind
from ..domain.realms import ALL_RIGHTS, check_realm_uri
from .admin.realm import ensure_realm
from .authentication import SIGNED, SUPPORTED
from .context import RequestContext
from .credentials import register_signing
from .wrapping_keys import add_values as add_wrapping_values
from .messages import RegisterEndpointRequest, RegisterEndpointResult

RESERVED_PEP_PREFIX = "pep://ieee.org/siswg/"


def register_endpoint(ctx: RequestContext, req: RegisterEndpointRequest) -> RegisterEndpointResult:
    caller = ctx.caller
    assert caller is not None
    if req.kind is EndpointKind.CLIENT and not caller.is_admin:
        raise PermissionDenied("only an administrator registers KMS clients")
    if ctx.repo.endpoint_name_taken(req.kind, req.name):
        raise AlreadyExists(f"a {req.kind.value} named {req.name!r} is already registered")
    realms = _realms(ctx, caller, req.realms, req.kind)
    for realm in realms:
        ensure_realm(ctx, realm)
    # A PEP starts with the rights of its registering client (§4.6); a client registered
    # by an administrator gets every right in the realms named.
    grants = {r: caller.grants.get(r, ALL_RIGHTS) if req.kind is EndpointKind.PEP
              else ALL_RIGHTS for r in realms}
    cred_type, password_hash = _credential(req)
    ep = Endpoint(
        endpoint_id=str(uuid.uuid4()), kind=req.kind, name=req.name, state=ClientState.ACTIVE,
        credential_type=cred_type, version=1, grants=grants,
        capabilities=tuple(sorted(set(req.capabilities))),
        attributes=req.pep_attributes + req.attributes, description=req.description,
        endpoint_type_id=req.endpoint_type_id,
        owner_id=caller.endpoint_id if req.kind is EndpointKind.PEP else None,
        password_hash=password_hash,
        # a PEP registered with a signing credential proves itself with it (§4.6)
        authentication_policy=(cred_type.value if cred_type in SIGNED else PEP_AUTH_NONE)
        if req.kind is EndpointKind.PEP else None)
    ctx.repo.insert_endpoint(ep, ctx.now)
    if cred_type in SIGNED and req.credential is not None:
        register_signing(ctx, ep.endpoint_id, cred_type, req.credential.values[0])
    add_wrapping_values(ctx, ep, req.wrapping_values)
    return RegisterEndpointResult(ep.endpoint_id, ep.kind)


def _realms(ctx: RequestContext, caller: Endpoint, asked: tuple[str, ...],
            req_kind: EndpointKind) -> tuple[str, ...]:
    if not asked:  # a PEP joins its client's realms; a client the default realm
        if req_kind is EndpointKind.PEP and caller.realms:
            return caller.realms
        return (ctx.settings.default_realm,)
    outside = set(asked) - set(caller.realms)
    if outside and not caller.is_admin:
        raise PermissionDenied(f"not a member of {', '.join(sorted(outside))}")
    return tuple(sorted({check_realm_uri(r) for r in asked}))


def _credential(req: RegisterEndpointRequest) -> tuple[CredentialType, str | None]:
    cred = req.credential
    names = [a.name for a in req.pep_attributes]
    if len(set(names)) != len(names):
        raise InvalidParameter("PEP attribute names must be unique")
    if req.kind is EndpointKind.CLIENT and cred is None:
        raise InvalidParameter("a KMS client is registered with a credential")
    if cred is None:
        return CredentialType.USERNAME_PASSWORD, None
    if cred.type in SIGNED:
        if len(cred.values) != 1:
            raise InvalidParameter(f"a {cred.type.value} credential has one CredentialValue")
        return cred.type, None
    if cred.type is not CredentialType.USERNAME_PASSWORD:
        raise UnsupportedAuthenticationMode(
            f"credential type {cred.type.value} cannot be registered", supported=SUPPORTED)
    if cred.username != req.name:
        raise InvalidParameter("the credential's Username must be the endpoint's Name")
    return cred.type, hash_password(cred.password or "")
