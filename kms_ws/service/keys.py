"""§6.5 CreateKey, §6.6 StoreKey, §6.7 GetKey."""

from __future__ import annotations

from collections.abc import Sequence

from ..crypto.random import generate_key
from ..domain import ciphers
from ..domain.errors import (
    AmbiguousReference,
    InternalError,
    InvalidParameter,
    KeyNotFound,
    KeyNotUsable,
    NotFound,
    PepProofRequired,
    PermissionDenied,
    SignatureInvalid,
    WrappingUnavailable,
)
from ..domain.lifecycle import check_deliverable, effective_state
from ..domain.model import Endpoint, EndpointKind, Key, KeyTemplate, KeyUsage, SourceKind
from ..domain.realms import Right, allows, realms_with, rights_on, usable_realms
from . import policies
from .admin.endpoints import pep_serves
from .assignment import key_for_data
from .bindings import readable_realms
from .caching import resolve_for
from .context import RequestContext
from .key_creation import insert_key, key_realms, new_key
from .key_delivery import Delivery, accept, apply, for_reference_only, start_delivery
from .key_versions import apply_retention, load_key, narrow_for_client
from .messages import (
    CreateKeyRequest,
    GetKeyRequest,
    GetKeyResult,
    KeyResult,
    StoreKeyRequest,
    StoreKeyResult,
)
from .pep_auth import authenticate_pep, require_owner_proof, require_pep_layer


def create_key(ctx: RequestContext, req: CreateKeyRequest) -> KeyResult:
    caller = _caller(ctx)
    template = _template(ctx, req.template_id, req.template_name)
    if template is not None:
        cipher_type, length = ciphers.resolve(req.cipher_type or template.cipher_type,
                                              req.length_bits or template.length_bits)
    else:
        cipher_type, length = ciphers.resolve(req.cipher_type, req.length_bits)
    pep = _pep_for(ctx, caller, req.pep_id, "CreateKey")
    realms = key_realms(ctx, caller, req.realms, template, pep)
    delivery = start_delivery(ctx, caller, pep, req.wrapping_type)
    require_pep_layer(pep, delivery.pep_keys)
    key = new_key(ctx, cipher_type, length, req.friendly_name, req.description, template,
                  req.attributes, req.datasets, pep, SourceKind.KMS, None, realms)
    key.value = generate_key(length)
    insert_key(ctx, caller, key)
    # The creator gets the key as a delivery shows it: the caching its policies give the
    # receiver, and the policies that decided (for a new key: those of its template).
    in_force = policies.key_policies(ctx, key)
    if "RetentionPolicy" in in_force:
        policies.applied(key, "RetentionPolicy", in_force["RetentionPolicy"].object_id)
    policies.caching_for(ctx, in_force, key, pep or caller)
    allowed = _value_delivery(ctx, caller, key, delivery)
    if allowed is None:
        # Create without Read (§4.5: rights are a set): the new key's id and metadata,
        # never a value the caller could open.
        key.value = None
        return KeyResult(key)
    # A wrapping that cannot be made raises here and rolls the creation back.
    wrapping = policies.wrapping_for(ctx, key, caller, pep)
    apply(ctx, allowed, key, wrapping)
    policies.applied_wrapping(key, wrapping)
    return KeyResult(key)


def store_key(ctx: RequestContext, req: StoreKeyRequest) -> StoreKeyResult:
    caller = _caller(ctx)
    value = accept(ctx, caller, req)
    cipher_type, length = ciphers.resolve(req.cipher_type, len(value) * 8)
    pep = _pep_for(ctx, caller, req.pep_id, "StoreKey")
    realms = key_realms(ctx, caller, req.realms, None, pep)
    source = SourceKind.PEP if pep is not None else SourceKind.CLIENT
    key = new_key(ctx, cipher_type, length, req.friendly_name, req.description, None,
                  req.attributes, req.datasets, pep, source,
                  pep.endpoint_id if pep is not None else caller.endpoint_id, realms)
    key.value = value
    insert_key(ctx, caller, key)
    return StoreKeyResult(key.key_id, key.version)


def get_key(ctx: RequestContext, req: GetKeyRequest) -> GetKeyResult:
    """Deliver keys the caller (and the PEP it asks for) may use: Reference right through
    a shared realm, the access/distribution policy, the life cycle for the stated use.
    Lookups that search metadata (attributes, altered-since) need the Read right."""
    caller = _caller(ctx)
    pep = _pep_for(ctx, caller, req.pep_id, "GetKey", req.key_id)
    dl = start_delivery(ctx, caller, pep, req.wrapping_type)
    require_pep_layer(pep, dl.pep_keys)
    if req.key_id is not None:
        key = _load_visible(ctx, caller, req.key_id, pep)
        if req.if_altered_since_version is not None and key.version <= req.if_altered_since_version:
            return GetKeyResult((), not_modified=True)
        return GetKeyResult((_deliver(ctx, key, req.usage, caller, pep, dl),))
    find = ctx.uow.keys.find_key_ids
    usable = _usable_realms(caller, pep, Right.REFERENCE)
    if req.friendly_name is not None:
        ids = find(usable, limit=2, friendly_name=req.friendly_name, attributes=req.attributes)
        key = _single(ctx, ids, req.friendly_name)
        return GetKeyResult((_deliver(ctx, key, req.usage, caller, pep, dl),))
    if req.datasets and req.all_bound:
        return _all_bound(ctx, req, caller, pep, dl)
    if req.datasets:
        return GetKeyResult((_deliver(ctx, key_for_data(ctx, caller, req, usable), req.usage,
                                      caller, pep, dl),))
    readable = _usable_realms(caller, pep, Right.READ)
    if req.match_attributes:
        ids = find(readable, limit=req.max_keys + 1, attributes=req.match_attributes)
        return _listing(ctx, ids, req, caller, pep, dl)
    if req.altered_since is not None:
        ids = find(readable, limit=req.max_keys + 1, altered_since=req.altered_since,
                   order="edited")
        return _listing(ctx, ids, req, caller, pep, dl)
    raise InvalidParameter("GetKey needs a KeyId, FriendlyName, MatchAttributes, DataSets "
                           "or AlteredSince")


# ---------------------------------------------------------------------------------------

def _caller(ctx: RequestContext) -> Endpoint:
    if ctx.caller is None:  # the dispatcher authenticates first; this is a safety net
        raise InternalError("operation ran without an authenticated caller")
    return ctx.caller


def _template(ctx: RequestContext, template_id: str | None,
              name: str | None) -> KeyTemplate | None:
    if template_id is None and name is None:
        return None
    tpl = ctx.uow.templates.get_template(template_id=template_id, name=name)
    usable = realms_with(_caller(ctx).grants, Right.REFERENCE)
    if tpl is None or (tpl.realms and not set(tpl.realms) & set(usable)):
        raise NotFound(f"no key template {template_id or name}")
    return tpl


def _pep_for(ctx: RequestContext, caller: Endpoint, pep_id: str | None,
             operation: str | None = None, key_id: str | None = None,
             bound: Sequence[tuple[str, str]] = ()) -> Endpoint | None:
    """The PEP a key is destined for; only through a client associated with it, and (for
    an `operation` that delivers or stores a key, or lists or subscribes to the PEP's
    keys) with the PEP's own proof where its authentication policy asks for one
    (service.pep_auth)."""
    if pep_id is None:
        if operation is not None and ctx.pep_proof is not None:
            raise SignatureInvalid("the PEP proof is for a request made for a PEP")
        return None
    pep = ctx.uow.endpoints.get_endpoint(pep_id)
    if pep is None or pep.kind is not EndpointKind.PEP:
        raise NotFound(f"no PEP {pep_id}")
    if not pep_serves(ctx, pep, caller):
        raise PermissionDenied(f"client {caller.name} is not associated with PEP {pep_id}")
    if operation is not None:
        authenticate_pep(ctx, pep, operation, key_id, bound)
    return pep


def _usable_realms(caller: Endpoint, pep: Endpoint | None, right: Right) -> tuple[str, ...]:
    return usable_realms(caller.grants, right, pep.grants if pep is not None else None)


def _load_visible(ctx: RequestContext, caller: Endpoint, key_id: str,
                  pep: Endpoint | None) -> Key:
    key = load_key(ctx, key_id)
    if not set(key.realms) & set(_usable_realms(caller, pep, Right.REFERENCE)):
        if pep is None and rights_on(caller.grants, key.realms):
            # a right without Reference or Read (Create, Edit, Delete): the key exists
            # for the caller, its value does not
            raise PermissionDenied(f"Read right needed to receive key {key_id}'s value")
        # Same answer as for a key that does not exist: ids are not an oracle.
        raise KeyNotFound(f"no key {key_id}")
    return key


def _single(ctx: RequestContext, ids: list[str], label: str) -> Key:
    if not ids:
        raise KeyNotFound(f"no key named {label!r}")
    if len(ids) > 1:
        raise AmbiguousReference(f"several keys are named {label!r}; add reference attributes "
                                 "or use the KeyId")
    return load_key(ctx, ids[0])


def _value_delivery(ctx: RequestContext, caller: Endpoint, key: Key,
                    delivery: Delivery) -> Delivery | None:
    """§4.5 "reference (use but not view)": a caller with Read on the key may receive its
    value; with Reference only, just wrapped for a PEP it serves, under a wrapping key of
    the PEP that the caller cannot open (key_delivery.for_reference_only). None: no value
    for this caller."""
    if allows(caller.grants, key.realms, Right.READ):
        return delivery
    if not allows(caller.grants, key.realms, Right.REFERENCE):
        return None
    return for_reference_only(ctx, caller, key, delivery)


def _refuse_value(key: Key, pep: Endpoint | None, delivery: Delivery) -> PermissionDenied:
    if pep is not None and delivery.pep_keys:  # the PEP's keys are all the caller's to open
        return PermissionDenied(
            f"Read right needed to receive key {key.key_id}'s value; with Reference only "
            f"it is delivered just wrapped for PEP {pep.endpoint_id} under a wrapping key "
            "of the PEP registered by an administrator or by an endpoint holding Read on "
            "the key, and the PEP has none")
    return PermissionDenied(
        f"Read right needed to receive key {key.key_id}'s value; with Reference only a "
        "key is delivered just wrapped for a PEP the client serves (PepId), under a "
        "wrapping key of the PEP registered by an administrator or by an endpoint "
        "holding Read on the key")


def _deliver(ctx: RequestContext, key: Key, usage: KeyUsage | None, caller: Endpoint,
             pep: Endpoint | None, delivery: Delivery) -> Key:
    """Check everything that stands between a key and its recipient, wrap it as the
    wrapping policy and the recipients' wrapping keys decide, then record the use
    (USE_BY_CLIENTS / USE_BY_PEPS). Reference-only callers get the key only wrapped for
    a PEP they serve, and no metadata."""
    allowed = _value_delivery(ctx, caller, key, delivery)
    if allowed is None:
        raise _refuse_value(key, pep, delivery)
    group_ids = policies.key_groups(ctx, key)
    in_force = policies.key_policies(ctx, key, group_ids)
    # Dates drive transitions at request time: the retention policy in force now decides
    # them, including one reaching the key through a dynamic key group (never stored).
    apply_retention(ctx, key, in_force)
    # and the caller's own retention policies narrow them for it (§5.2, per client)
    client_retention = policies.client_retention(ctx, caller)
    narrow_for_client(key, client_retention)
    key.state = check_deliverable(key, usage, ctx.now)
    if key.value is None:
        raise KeyNotUsable(f"key {key.key_id} has no value")
    policies.check_access(ctx, in_force, key, caller, pep)
    require_owner_proof(ctx, key, pep)
    wrapping = policies.wrapping_for(ctx, key, caller, pep, group_ids)
    apply(ctx, allowed, key, wrapping)
    # the policies that decided this delivery, in the order they were applied
    if key.assignment_policy_id is not None:
        policies.applied(key, "KeyAssignmentPolicy", key.assignment_policy_id)
    if "RetentionPolicy" in in_force:
        policies.applied(key, "RetentionPolicy", in_force["RetentionPolicy"].object_id)
    for obj in client_retention:
        policies.applied(key, obj.kind, obj.object_id)
    if "AccessDistributionPolicy" in in_force:
        policies.applied(key, "AccessDistributionPolicy",
                         in_force["AccessDistributionPolicy"].object_id)
    policies.applied_wrapping(key, wrapping)
    policies.caching_for(ctx, in_force, key, pep or caller)
    key.hidden = not allows(caller.grants, key.realms, Right.READ)
    key_id, now = key.key_id, ctx.now
    ctx.defer(lambda uow: uow.keys.record_use(key_id, caller.endpoint_id, "Client", now))
    if pep is not None:
        ctx.defer(lambda uow: uow.keys.record_use(key_id, pep.endpoint_id, "Pep", now))
    return key


def _all_bound(ctx: RequestContext, req: GetKeyRequest, caller: Endpoint,
               pep: Endpoint | None, delivery: Delivery) -> GetKeyResult:
    """Every key that protected the data (bound to all the data sets presented), newest
    first, to decrypt with: a binding query, so only keys the caller may read
    (service.bindings)."""
    if req.usage is not KeyUsage.DECRYPT:
        raise InvalidParameter("AllBoundKeys asks for the keys to decrypt with: "
                               "give Usage Decrypt")
    ids = ctx.uow.keys.find_key_ids(readable_realms(caller, pep), limit=req.max_keys + 1,
                                    datasets=req.datasets, template_id=req.template_id,
                                    order="newest")
    return _listing(ctx, ids, req, caller, pep, delivery)


def _listing(ctx: RequestContext, ids: list[str], req: GetKeyRequest, caller: Endpoint,
             pep: Endpoint | None, delivery: Delivery) -> GetKeyResult:
    keys, listed = [], []
    for key_id in ids[:req.max_keys]:
        key = load_key(ctx, key_id)
        try:
            _deliver(ctx, key, req.usage, caller, pep, delivery)
        except (KeyNotUsable, PermissionDenied, PepProofRequired, WrappingUnavailable):
            key.state = effective_state(key, ctx.now)
            key.value = None  # metadata only: the state tells the client why
            listed.append(key)
        keys.append(key)
    resolve_for(ctx, pep or caller, listed)  # listed, not delivered: their caching type
    return GetKeyResult(tuple(keys), more=len(ids) > req.max_keys)
