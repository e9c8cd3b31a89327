"""§6.1 RegisterEndpoint: a KMS client (by an administrator) or a PEP (by its client).

Nobody grants more than it holds, and naming a realm never creates it (issue 12.4): a
client is registered as AdminCreate makes one (admin.endpoints.client_grants); a PEP
starts with the rights of whoever registers it (§4.6), in realms where that caller holds
rights, or with fewer rights when the request names them. Its endpoint type is the one
asked for or the one the administrators' rules give its CIM identity
(service.endpoint_identity)."""

from __future__ import annotations

import uuid

from ..crypto.passwords import hash_password
from ..domain.errors import InvalidParameter, PermissionDenied, UnsupportedAuthenticationMode
from ..domain.model import PEP_AUTH_NONE, ClientState, CredentialType, Endpoint, EndpointKind
from ..domain.realms import Right, check_realm_uri, parse_rights
from .admin.base import require_realm
from .admin.endpoints import check_grantable, client_grants, require_unregistered
from .authentication import SIGNED, SUPPORTED
from .context import RequestContext
from .credentials import SECRET_TYPES, register_signing, require_private_channel
from .endpoint_identity import endpoint_type
from .messages import RegisterEndpointRequest, RegisterEndpointResult
from .wrapping_keys import add_values as add_wrapping_values

RESERVED_PEP_PREFIX = "pep://ieee.org/siswg/"


def register_endpoint(ctx: RequestContext, req: RegisterEndpointRequest) -> RegisterEndpointResult:
    caller = ctx.caller
    assert caller is not None
    if req.kind is EndpointKind.CLIENT and not caller.is_admin:
        raise PermissionDenied("only an administrator registers KMS clients")
    asked = [(check_realm_uri(a.realm), a.rights) for a in req.realms]
    grants = client_grants(ctx, asked) if req.kind is EndpointKind.CLIENT \
        else _pep_grants(ctx, caller, asked)
    require_unregistered(ctx, req.kind, req.name)
    cred_type, password_hash = _credential(ctx, req)
    type_id = endpoint_type(ctx, caller, req.endpoint_type_id, req.cim_identity,
                            req.cim_identity_given, list(grants))
    ep = Endpoint(
        endpoint_id=str(uuid.uuid4()), kind=req.kind, name=req.name, state=ClientState.ACTIVE,
        credential_type=cred_type, version=1, grants=grants,
        capabilities=tuple(sorted(set(req.capabilities))),
        attributes=req.pep_attributes + req.attributes, description=req.description,
        endpoint_type_id=type_id,
        owner_id=caller.endpoint_id if req.kind is EndpointKind.PEP else None,
        password_hash=password_hash,
        # a PEP registered with a signing credential proves itself with it (§4.6)
        authentication_policy=(cred_type.value if cred_type in SIGNED else PEP_AUTH_NONE)
        if req.kind is EndpointKind.PEP else None)
    ctx.uow.endpoints.insert_endpoint(ep, ctx.now)
    ctx.uow.endpoints.set_cim_identity(ep.endpoint_id, req.cim_identity)
    if cred_type in SIGNED and req.credential is not None:
        register_signing(ctx, ep.endpoint_id, cred_type, req.credential.values[0])
    add_wrapping_values(ctx, ep, req.wrapping_values)
    return RegisterEndpointResult(ep.endpoint_id, ep.kind, ep.endpoint_type_id)


def _pep_grants(ctx: RequestContext, caller: Endpoint,
                asked: list[tuple[str, tuple[str, ...]]]) -> dict[str, frozenset[Right]]:
    """A new PEP's grants: in each realm named — one where the caller holds rights — the
    rights named (only ones the caller holds there) or else the caller's own there (§4.6
    "full rights granted to its registering Client"); none named: the caller's one
    default realm — the server's default realm if the caller holds rights there, else
    its only realm — never every realm of the caller."""
    if caller.is_admin:  # realms are visible to administrators: an unknown one is named
        for realm, _ in asked:
            require_realm(ctx, realm)
    if not asked:  # ONE realm, as for every new object (domain.realms.new_object_realms)
        mine = sorted(r for r, rights in caller.grants.items() if rights)
        if not mine:
            raise PermissionDenied(f"{caller.name} holds no right in any realm")
        default = ctx.settings.default_realm
        if default not in mine and len(mine) > 1:
            raise InvalidParameter(f"name the realm(s) for the new PEP (RealmAssociations): "
                                   f"the caller holds rights in {', '.join(mine)}")
        realm = default if default in mine else mine[0]
        return {realm: caller.grants[realm]}
    out: dict[str, frozenset[Right]] = {}
    for realm, rights in asked:
        held = caller.grants.get(realm)
        if not held:  # the same answer whether the realm exists or not
            raise PermissionDenied(f"{caller.name} holds no right in {realm}")
        out[realm] = parse_rights(rights) if rights else held
        check_grantable(ctx, realm, out[realm])
    return out


def _credential(ctx: RequestContext, req: RegisterEndpointRequest
                ) -> tuple[CredentialType, str | None]:
    cred = req.credential
    if cred is not None and cred.type in SECRET_TYPES:
        require_private_channel(ctx, f"registering a {cred.type.value} credential")
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
