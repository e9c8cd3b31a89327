"""§4.7 clients and §4.6 PEPs as administered objects.

Realm associations of an endpoint carry rights (§4.5): associating a client with a realm
names its rights there (all of them when none are named); associating again changes
them. A PEP receives keys only through clients associated with it: its registering
client, and those an administrator associates.

Administrators stay inside their realms (issue 12.4): reading an endpoint needs Read in
one of its realms, but acting on it (edit, credentials, state, associations, wrapping
keys) needs Edit in EVERY realm it belongs to, and deleting it Delete in every one: an
administrator of one realm cannot take over an endpoint that also holds rights in
another. Rights are granted only in realms where the administrator holds Create, only
those it holds itself, and only in realms that exist."""

from __future__ import annotations

import uuid

from ...crypto.passwords import hash_password
from ...domain import backoff
from ...domain.endpoint_type_rules import identity_from_document
from ...domain.errors import AlreadyExists, InUse, InvalidParameter, NotFound, PermissionDenied
from ...domain.model import (
    PEP_AUTH_NONE,
    ClientState,
    CredentialType,
    Endpoint,
    EndpointKind,
    NameValue,
)
from ...domain.realms import (
    ALL_RIGHTS,
    Right,
    format_rights,
    missing_rights,
    new_object_realms,
    parse_rights,
    realms_with,
)
from .. import authentication, credentials, endpoint_identity, subscription_end, visibility
from ..context import RequestContext
from ..messages import Credential
from .base import (
    Kind,
    check_version,
    is_guid,
    need,
    need_everywhere,
    realm_doc,
    realm_list,
    require_realm,
)
from .common import clean, pair_doc, pairs, policy_ids
from .decoders import capability_names
from .messages import AdminRequest, Document, Ref


class EndpointKindBase(Kind):
    endpoint_kind = EndpointKind.CLIENT

    def realms_of(self, ctx: RequestContext, object_id: str) -> tuple[str, ...] | None:
        ep = ctx.uow.endpoints.get_endpoint(object_id)
        return ep.realms if ep and ep.kind is self.endpoint_kind else None

    def load(self, ctx: RequestContext, object_id: str, right: Right) -> Endpoint:
        """The endpoint, with `right` on it: Read or Reference in one of its realms, Edit
        or Delete in every one of them."""
        ep = ctx.uow.endpoints.get_endpoint(object_id) if is_guid(object_id) else None
        if ep is None or ep.kind is not self.endpoint_kind:
            raise NotFound(f"no {self.element} {object_id}")
        check = need if right in (Right.READ, Right.REFERENCE) else need_everywhere
        check(ctx, ep.realms, right, f"{self.element} {object_id}")
        return ep

    def get(self, ctx: RequestContext, object_id: str) -> Document:
        return self.document(ctx, self.load(ctx, object_id, Right.READ))

    def document(self, ctx: RequestContext, ep: Endpoint) -> Document:
        raise NotImplementedError

    def list(self, ctx: RequestContext, req: AdminRequest) -> tuple[list[Document], bool]:
        assert ctx.caller is not None
        eps = ctx.uow.endpoints.list_endpoints(self.endpoint_kind.value,
                                               realms_with(ctx.caller.grants, Right.READ),
                                               req.max_items + 1, req.altered_since)
        return [self.document(ctx, e) for e in eps[:req.max_items]], len(eps) > req.max_items

    def _edit_common(self, ctx: RequestContext, ep: Endpoint, doc: Document) -> None:
        check_version(ep.version, doc.get("Version"))
        type_id = doc.get("EndpointTypeId")
        if type_id and type_id != ep.endpoint_type_id:
            endpoint_identity.require_usable_type(ctx, type_id)
        ep.endpoint_type_id = type_id
        ep.version += 1

    def delete(self, ctx: RequestContext, req: AdminRequest) -> Document | None:
        ep = self.load(ctx, req.object_id or "", Right.DELETE)
        if req.version is not None:
            check_version(ep.version, req.version)
        assert ctx.caller is not None
        if ep.endpoint_id == ctx.caller.endpoint_id:
            raise InvalidParameter("an administrator cannot delete itself")
        used = ctx.uow.endpoints.endpoint_users(ep.endpoint_id)
        if used:
            raise InUse(f"{self.element} {ep.endpoint_id} still has {used}")
        subscription_end.endpoint_deleted(ctx.uow, ep, ctx.now)
        ctx.uow.objects.drop_associations(self.element, ep.endpoint_id)
        ctx.uow.endpoints.delete_endpoint(ep.endpoint_id)
        return None

    def associate(self, ctx: RequestContext, object_id: str, target: Ref,
                  rights: tuple[str, ...]) -> None:
        if target.kind != "Realm":
            return super().associate(ctx, object_id, target, rights)
        ep = self.load(ctx, object_id, Right.EDIT)
        grant_realm(ctx, ep, target.object_id, rights)  # may take the Read right away
        subscription_end.review(ctx.uow, ep.endpoint_id, ctx.now)
        visibility.reads_lost(ctx.uow, ep.endpoint_id, ep.grants, ctx.now)

    def disassociate(self, ctx: RequestContext, object_id: str, target: Ref) -> None:
        if target.kind != "Realm":
            return super().disassociate(ctx, object_id, target)
        ep = self.load(ctx, object_id, Right.EDIT)
        if target.object_id not in ep.grants:
            raise NotFound(f"{self.element} {object_id} is not in {target.object_id}")
        need(ctx, [target.object_id], Right.DELETE, f"realm {target.object_id}")
        if len(ep.grants) == 1:
            raise InvalidParameter("an endpoint keeps at least one realm association")
        ctx.uow.endpoints.revoke(ep.endpoint_id, target.object_id)
        subscription_end.review(ctx.uow, ep.endpoint_id, ctx.now)
        visibility.reads_lost(ctx.uow, ep.endpoint_id, ep.grants, ctx.now)


def wrapping_keys_doc(ctx: RequestContext, ep: Endpoint) -> Document | None:
    """§4.6/§4.7 WRAPPING_VALUES as shown: ids, kinds, times; never a secret."""
    keys = ctx.uow.endpoints.wrapping_keys(ep.endpoint_id)
    return {"WrappingKey": [clean({"WrappingKeyId": k.key_id, "Kind": k.kind.value,
                                   "Registered": k.created_at, "NotAfter": k.not_after})
                            for k in keys]} if keys else None


def grant_realm(ctx: RequestContext, ep: Endpoint, realm: str, rights: tuple[str, ...]) -> None:
    assert ctx.caller is not None
    require_realm(ctx, realm)
    if realm not in realms_with(ctx.caller.grants, Right.CREATE):
        raise PermissionDenied(f"Create right needed in {realm} to grant rights there")
    granted = parse_rights(rights) if rights else ALL_RIGHTS
    check_grantable(ctx, realm, granted)
    ctx.uow.endpoints.grant(ep.endpoint_id, realm, granted)


def check_grantable(ctx: RequestContext, realm: str, rights: frozenset[Right]) -> None:
    """One grants only rights one holds, in that realm."""
    assert ctx.caller is not None
    if not rights:
        raise InvalidParameter(f"no right named for {realm}")
    lacking = missing_rights(ctx.caller.grants, realm, rights)
    if lacking:
        raise PermissionDenied(f"only rights the caller holds are granted; it lacks "
                               f"{format_rights(lacking)} in {realm}")


def client_grants(ctx: RequestContext, asked: list[tuple[str, tuple[str, ...]]]
                  ) -> dict[str, frozenset[Right]]:
    """The grants of a new client (AdminCreate, RegisterEndpoint): in each realm named
    (it must exist; the administrator needs Create there) the rights named, all of them
    when none are, each one the administrator holds itself; none named: every right in
    the administrator's one default realm (domain.realms.new_object_realms)."""
    assert ctx.caller is not None
    for realm, _ in asked:
        require_realm(ctx, realm)
    named = dict(asked)
    out: dict[str, frozenset[Right]] = {}
    for realm in new_object_realms(ctx.caller.grants, list(named), ctx.settings.default_realm,
                                   "client"):
        out[realm] = parse_rights(named[realm]) if named.get(realm) else ALL_RIGHTS
        check_grantable(ctx, realm, out[realm])
    return out


class ClientKind(EndpointKindBase):
    element = "Client"
    id_field = "ClientId"
    endpoint_kind = EndpointKind.CLIENT

    def resolve(self, ctx: RequestContext, ref: str) -> str:
        if is_guid(ref):
            return ref
        ep = ctx.uow.endpoints.find_client(ref)
        if ep is None:
            raise NotFound(f"no Client named {ref!r}")
        return ep.endpoint_id

    def document(self, ctx: RequestContext, ep: Endpoint) -> Document:
        return clean({
            "ClientId": ep.endpoint_id, "Name": ep.name, "State": shown_state(ctx, ep).value,
            "CredentialType": ep.credential_type.value,
            "CredentialsSet": "true" if _has_credential(ctx, ep) else "false",
            "RealmAssociations": realm_doc(ep.realms, ep.grants),
            "EndpointTypeId": ep.endpoint_type_id,
            "Capabilities": {"Capability": [{"Name": c} for c in ep.capabilities]}
            if ep.capabilities else None,
            **policy_ids(ctx, "Client", ep.endpoint_id, ("WrappingPolicyId",)),
            "WrappingKeys": wrapping_keys_doc(ctx, ep),
            "Attributes": pair_doc(ep.attributes),
            "Administrator": "true" if ep.is_admin else "false",
            "KmServer": "true" if ep.is_km_server else "false",
            "CimIdentity": endpoint_identity.identity_doc(ctx, ep),
            "Version": str(ep.version)})

    def create(self, ctx: RequestContext, req: AdminRequest) -> Document:
        doc = req.document or {}
        grants = client_grants(ctx, realm_list(doc))  # may the caller put it there at all
        _no_credential_tuples(doc)
        name = doc.get("Name", "")
        cred = req.credential
        cred_type, password_hash = _new_client_credential(ctx, name, cred)
        require_unregistered(ctx, EndpointKind.CLIENT, name)
        # §4.4: the type asked for, else the one the rules map its CIM identity to
        identity = identity_from_document(doc.get("CimIdentity"))
        assert ctx.caller is not None
        type_id = endpoint_identity.endpoint_type(ctx, ctx.caller, doc.get("EndpointTypeId"),
                                                  identity, "CimIdentity" in doc, list(grants))
        ep = Endpoint(endpoint_id=doc.get("ClientId") or str(uuid.uuid4()),
                      kind=EndpointKind.CLIENT, name=name, state=ClientState.ACTIVE,
                      credential_type=cred_type, version=1,
                      grants=grants, capabilities=tuple(capability_names(doc)),
                      attributes=pairs(doc, "Attributes"),
                      endpoint_type_id=type_id,
                      is_admin=doc.get("Administrator") in ("true", "1"),
                      is_km_server=doc.get("KmServer") in ("true", "1"),
                      password_hash=password_hash)
        ctx.uow.endpoints.insert_endpoint(ep, ctx.now)
        ctx.uow.endpoints.set_cim_identity(ep.endpoint_id, identity)
        if cred is not None and cred_type in authentication.SIGNED:
            credentials.register_signing(ctx, ep.endpoint_id, cred_type, cred.values[0])
        return self.document(ctx, ep)

    def edit(self, ctx: RequestContext, req: AdminRequest) -> Document:
        doc = req.document or {}
        ep = self.load(ctx, self.resolve(ctx, doc.get("ClientId", "")), Right.EDIT)
        new_credential = _client_credential(ctx, doc, ep)
        if doc.get("Name", ep.name) != ep.name:
            raise InvalidParameter("a client's Name is its user name and does not change")
        self._edit_common(ctx, ep, doc)
        was = ep.state
        now_in = backoff.effective_state(ep, ctx.now, ctx.settings.lockout_seconds)
        ep.state = client_state(now_in, doc.get("State", now_in.value))
        if ep.state is ClientState.ACTIVE:
            ep.failed_auth, ep.locked_at = 0, None
            if was is ClientState.LOCKED:  # unlocked: its name's backoff starts afresh
                authentication.clear_name_strikes(ctx.uow, ep.name)
        ep.capabilities = tuple(sorted(set(capability_names(doc))))
        ep.attributes = pairs(doc, "Attributes")
        ep.is_admin = doc.get("Administrator", "false") in ("true", "1")
        ep.is_km_server = doc.get("KmServer", "false") in ("true", "1")
        ctx.uow.endpoints.update_endpoint(ep, ctx.now)
        subscription_end.review(ctx.uow, ep.endpoint_id, ctx.now)  # e.g. now Disabled
        if new_credential is not None:  # the old secret and its sessions stop working now
            credentials.replace(ctx, ep.endpoint_id, new_credential)
            ctx.uow.endpoints.revoke_sessions_of(ep.endpoint_id)
        return self.document(ctx, ep)


def require_unregistered(ctx: RequestContext, kind: EndpointKind, name: str) -> None:
    """An endpoint's name is unique among its kind (a client's name is its user name):
    RegisterEndpoint, AdminCreate and the offline `kms-ws client add` (which runs
    AdminCreate) all ask here."""
    if ctx.uow.endpoints.endpoint_name_taken(kind, name):
        raise AlreadyExists(f"a {kind.value} named {name!r} is already registered")


def _new_client_credential(ctx: RequestContext, name: str, cred: Credential | None
                           ) -> tuple[CredentialType, str | None]:
    """A new client's credential and password hash: a password, or one AsymmetricKey
    (X.509 certificate) or SymmetricKey (HMAC secret) value as RegisterEndpoint takes
    them, registered once the client exists (credentials.register_signing). A secret
    crosses only a private channel."""
    if cred is not None and cred.type in credentials.SECRET_TYPES:
        credentials.require_private_channel(ctx, f"a {cred.type.value} credential")
    if cred is not None and cred.type in authentication.SIGNED:
        if len(cred.values) != 1:
            raise InvalidParameter(f"a {cred.type.value} credential has one CredentialValue")
        return cred.type, None
    if cred is None or cred.type is not CredentialType.USERNAME_PASSWORD or \
            not cred.password:
        raise InvalidParameter("a client is created with a UsernamePassword credential (or "
                               "an AsymmetricKey or SymmetricKey one)")
    if cred.username not in (None, name):
        raise InvalidParameter("the credential's Username must be the client's Name")
    return cred.type, hash_password(cred.password)


def _no_credential_tuples(doc: Document) -> None:
    if "Credentials" in doc:
        raise InvalidParameter("a new client's password comes in the Credential of "
                               "AdminCreate; Credentials tuples change it by AdminEdit")


def _client_credential(ctx: RequestContext, doc: Document, ep: Endpoint
                       ) -> credentials.NewCredential | None:
    """§4.7.1 {CREDENTIAL_LENGTH, CREDENTIAL_VALUE} set by an administrator: a
    UsernamePassword client's new password (UTF-8), a SymmetricKey client's new HMAC
    secret, an AsymmetricKey client's new X.509 certificate (DER or PEM); no tuple removes
    it. Checked before anything changes; never echoed back."""
    if "Credentials" not in doc:
        return None
    if doc.get("CredentialType", ep.credential_type.value) != ep.credential_type.value:
        raise InvalidParameter("a client's CredentialType does not change")
    return credentials.from_tuples(ctx, doc, "Credentials", ep.credential_type)


def _has_credential(ctx: RequestContext, ep: Endpoint) -> bool:
    if ep.credential_type is CredentialType.USERNAME_PASSWORD:
        return ep.password_hash is not None
    return credentials.registered_type(ctx, ep.endpoint_id) is not None


def shown_state(ctx: RequestContext, ep: Endpoint) -> ClientState:
    """§4.7.2 Authenticated: an Active client holding an open session (Login, until Logout,
    expiry or revocation). Derived when shown, never stored. A lockout that has run out
    shows as Active."""
    state = backoff.effective_state(ep, ctx.now, ctx.settings.lockout_seconds)
    if state is ClientState.ACTIVE and ctx.uow.endpoints.has_open_session(ep.endpoint_id, ctx.now):
        return ClientState.AUTHENTICATED
    return state


def client_state(current: ClientState, wanted: str) -> ClientState:
    """Administrators enable (Active: also unlocks), disable, or leave the state
    (Authenticated, as shown for an Active client with a session, leaves it)."""
    try:
        target = ClientState(wanted)
    except ValueError:
        raise InvalidParameter(f"unknown client state {wanted}") from None
    if target is current or (target is ClientState.AUTHENTICATED
                             and current is ClientState.ACTIVE):
        return current
    if target not in (ClientState.ACTIVE, ClientState.DISABLED):
        raise InvalidParameter(f"a client is set Active or Disabled, not {target.value}")
    return target


class PepKind(EndpointKindBase):
    element = "Pep"
    id_field = "PepId"
    endpoint_kind = EndpointKind.PEP
    targets = frozenset({"Client"})

    def document(self, ctx: RequestContext, ep: Endpoint) -> Document:
        clients = ([ep.owner_id] if ep.owner_id else []) + \
            [i for k, i in ctx.uow.objects.targets_of("Pep", ep.endpoint_id) if k == "Client"]
        return clean({
            "PepId": ep.endpoint_id, "Name": ep.name,
            "Attributes": pair_doc(ep.attributes),
            "RealmAssociations": realm_doc(ep.realms, ep.grants),
            "EndpointTypeId": ep.endpoint_type_id,
            "ClientAssociations": {"Id": sorted(set(clients))},
            # §4.6 AUTHENTICATION_POLICY: what the PEP proves itself with (service.pep_auth)
            "AuthenticationPolicy": ep.authentication_policy or PEP_AUTH_NONE,
            "AuthenticationValuesSet":
                "true" if credentials.registered_type(ctx, ep.endpoint_id) else "false",
            **policy_ids(ctx, "Pep", ep.endpoint_id, ("WrappingPolicyId",)),
            "WrappingKeys": wrapping_keys_doc(ctx, ep),
            "CimIdentity": endpoint_identity.identity_doc(ctx, ep),
            "Version": str(ep.version)})

    def create(self, ctx: RequestContext, req: AdminRequest) -> Document:
        """A PEP made by an administrator for a client (§4.6): its owner — the client
        that registers it and receives keys for it — is the one Id of ClientAssociations
        (Edit needed on that client: it will act for the PEP); its realms and rights as
        a client's (client_grants); its AUTHENTICATION_VALUES the optional Credential
        (an AsymmetricKey certificate or SymmetricKey secret, which then becomes its
        AuthenticationPolicy), as RegisterEndpoint takes them."""
        doc = req.document or {}
        grants = client_grants(ctx, realm_list(doc))
        owners = ((doc.get("ClientAssociations") or {}).get("Id") or [])
        if len(owners) != 1:
            raise InvalidParameter("a new PEP names its one owner client in "
                                   "ClientAssociations; more clients are associated later")
        owner = ClientKind().load(ctx, ClientKind().resolve(ctx, owners[0]), Right.EDIT)
        name = doc.get("Name") or ""
        if not name:
            raise InvalidParameter("a PEP has a Name")
        if "AuthenticationValues" in doc:
            raise InvalidParameter("a new PEP's authentication values come in the Credential "
                                   "of AdminCreate; AuthenticationValues change them by "
                                   "AdminEdit")
        cred = req.credential
        if cred is not None and cred.type not in authentication.SIGNED:
            raise InvalidParameter("a PEP proves itself with an AsymmetricKey certificate or "
                                   "a SymmetricKey secret (or nothing: its client vouches)")
        if cred is not None and len(cred.values) != 1:
            raise InvalidParameter(f"a {cred.type.value} credential has one CredentialValue")
        if cred is not None and cred.type in credentials.SECRET_TYPES:
            credentials.require_private_channel(ctx, f"a {cred.type.value} credential")
        require_unregistered(ctx, EndpointKind.PEP, name)
        # §4.6: the type asked for, else the one the rules map its CIM identity to
        identity = identity_from_document(doc.get("CimIdentity"))
        assert ctx.caller is not None
        type_id = endpoint_identity.endpoint_type(ctx, ctx.caller, doc.get("EndpointTypeId"),
                                                  identity, "CimIdentity" in doc, list(grants))
        pep_id = doc.get("PepId") or str(uuid.uuid4())
        if ctx.uow.endpoints.get_endpoint(pep_id) is not None:
            raise AlreadyExists(f"an endpoint {pep_id} exists")
        ep = Endpoint(endpoint_id=pep_id, kind=EndpointKind.PEP, name=name,
                      state=ClientState.ACTIVE,
                      credential_type=cred.type if cred else CredentialType.USERNAME_PASSWORD,
                      version=1, grants=grants,
                      attributes=check_pep_attributes(pairs(doc, "Attributes")),
                      endpoint_type_id=type_id, owner_id=owner.endpoint_id,
                      authentication_policy=cred.type.value if cred else PEP_AUTH_NONE)
        ctx.uow.endpoints.insert_endpoint(ep, ctx.now)
        ctx.uow.endpoints.set_cim_identity(ep.endpoint_id, identity)
        if cred is not None:
            credentials.register_signing(ctx, ep.endpoint_id, cred.type, cred.values[0])
        return self.document(ctx, ep)

    def edit(self, ctx: RequestContext, req: AdminRequest) -> Document:
        doc = req.document or {}
        ep = self.load(ctx, doc.get("PepId", ""), Right.EDIT)
        policy, values = _pep_authentication(ctx, doc, ep)
        self._edit_common(ctx, ep, doc)
        ep.attributes = check_pep_attributes(pairs(doc, "Attributes"))
        ep.authentication_policy = policy
        if values is not None:  # what a PEP without values is registered as (RegisterEndpoint)
            ep.credential_type = values.type if values.value is not None \
                else CredentialType.USERNAME_PASSWORD
        ctx.uow.endpoints.update_endpoint(ep, ctx.now)
        if values is not None:  # the old values stop verifying proofs now
            credentials.replace(ctx, ep.endpoint_id, values)
        return self.document(ctx, ep)

    def associate(self, ctx: RequestContext, object_id: str, target: Ref,
                  rights: tuple[str, ...]) -> None:
        if target.kind != "Client":
            return super().associate(ctx, object_id, target, rights)
        ep = self.load(ctx, object_id, Right.EDIT)
        # the client will act for the PEP: that changes the client too
        ClientKind().load(ctx, target.object_id, Right.EDIT)
        if target.object_id == ep.owner_id or not ctx.uow.objects.associate(
                "Pep", object_id, "Client", target.object_id):
            raise AlreadyExists(f"client {target.object_id} is already associated")

    def disassociate(self, ctx: RequestContext, object_id: str, target: Ref) -> None:
        if target.kind != "Client":
            return super().disassociate(ctx, object_id, target)
        self.load(ctx, object_id, Right.EDIT)
        if not ctx.uow.objects.disassociate("Pep", object_id, "Client", target.object_id):
            raise NotFound(f"client {target.object_id} is not associated (the registering "
                           "client always is)")
        subscription_end.review(ctx.uow, target.object_id, ctx.now)  # scoped to this PEP


def _pep_authentication(ctx: RequestContext, doc: Document, ep: Endpoint
                        ) -> tuple[str, credentials.NewCredential | None]:
    """§4.6 the AUTHENTICATION_POLICY (absent: unchanged) and AUTHENTICATION_VALUES (absent:
    unchanged; no tuple: removed) an edit sets. Values are of the policy's type; a policy
    asking for a type the PEP's values are not is refused. A policy with no values left
    is allowed: the PEP then gets no key until values are registered (fail closed)."""
    policy = doc.get("AuthenticationPolicy") or ep.authentication_policy or PEP_AUTH_NONE
    current = credentials.registered_type(ctx, ep.endpoint_id)
    values = None
    if "AuthenticationValues" in doc:
        kind = CredentialType(policy) if policy != PEP_AUTH_NONE else current
        if kind is None:
            if doc["AuthenticationValues"]:
                raise InvalidParameter("AuthenticationValues are of the AuthenticationPolicy's "
                                       "type: set it to AsymmetricKey or SymmetricKey")
            kind = CredentialType.SYMMETRIC_KEY  # removing what is not there: nothing to do
        values = credentials.from_tuples(ctx, doc, "AuthenticationValues", kind)
    after = current if values is None else (values.type if values.value is not None else None)
    if policy != PEP_AUTH_NONE and after is not None and after.value != policy:
        raise InvalidParameter(f"AuthenticationPolicy {policy} needs {policy} "
                               f"AuthenticationValues; this PEP's are {after.value}: send new "
                               "ones in the same edit")
    return policy, values


def check_pep_attributes(attrs: tuple[NameValue, ...]) -> tuple[NameValue, ...]:
    names = [a.name for a in attrs]
    if len(set(names)) != len(names):
        raise InvalidParameter("PEP attribute names must be unique")
    return attrs


def pep_serves(ctx: RequestContext, pep: Endpoint, client: Endpoint) -> bool:
    return pep.owner_id == client.endpoint_id or ctx.uow.objects.is_associated(
        "Pep", pep.endpoint_id, "Client", client.endpoint_id)

