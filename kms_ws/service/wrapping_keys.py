"""§4.6/§4.7 WRAPPING_VALUES: clients and PEPs register and rotate their wrapping keys.

A symmetric KEK is sealed under the master key at once and never returned; a certificate
is kept as DER. Rotation is: register the new key (the newest of a kind is used from the
next delivery on), then retire the old one by its WrappingKeyId.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from ..crypto import sealing
from ..crypto.wrapping import load_certificate
from ..domain.errors import AlreadyExists, InvalidParameter, NotFound, PermissionDenied
from ..domain.model import Endpoint, EndpointKind
from ..domain.realms import Right
from ..domain.wrapping import WrappingKeyInfo, WrappingKeyKind
from .admin.base import need_everywhere
from .context import RequestContext
from .messages import (
    RegisterWrappingValuesRequest,
    RegisterWrappingValuesResult,
    WrappingValue,
)
from .operator import OPERATOR_ID

MAX_WRAPPING_KEYS = 64


def register_wrapping_values(ctx: RequestContext,
                             req: RegisterWrappingValuesRequest) -> RegisterWrappingValuesResult:
    caller = ctx.caller
    assert caller is not None
    target = _target(ctx, caller, req.endpoint_id)
    if not req.values and not req.retire:
        raise InvalidParameter("RegisterWrappingValues needs WrappingValues or Retire")
    if req.retire:
        known = {k.key_id for k in ctx.uow.endpoints.wrapping_keys(target.endpoint_id)}
        missing = sorted(set(req.retire) - known)
        if missing:
            raise NotFound(f"no wrapping key {', '.join(missing)} for {target.name}")
        ctx.uow.endpoints.delete_wrapping_keys(target.endpoint_id, req.retire)
    add_values(ctx, target, req.values)
    return RegisterWrappingValuesResult(target.endpoint_id,
                                        tuple(ctx.uow.endpoints.wrapping_keys(target.endpoint_id)))


def add_values(ctx: RequestContext, target: Endpoint, values: Sequence[WrappingValue]) -> None:
    existing = ctx.uow.endpoints.wrapping_keys(target.endpoint_id)
    ids = [v.key_id for v in values]
    taken = sorted(set(ids) & {k.key_id for k in existing} |
                   {i for i in ids if ids.count(i) > 1})
    if taken:
        raise AlreadyExists(f"wrapping key id {', '.join(taken)} is already used by "
                            f"{target.name}; rotate to a new id")
    if len(existing) + len(values) > MAX_WRAPPING_KEYS:
        raise InvalidParameter(f"at most {MAX_WRAPPING_KEYS} wrapping keys per endpoint; "
                               "retire old ones")
    ordinal = ctx.uow.endpoints.next_wrapping_ordinal(target.endpoint_id)
    for n, value in enumerate(values):
        _insert(ctx, target, value, ordinal + n)


def _insert(ctx: RequestContext, target: Endpoint, v: WrappingValue, ordinal: int) -> None:
    registrant = ctx.caller  # recorded: it decides whether the key carries Reference-only
    assert registrant is not None  # deliveries (service.key_delivery.for_reference_only)
    # the offline operator is no stored endpoint (an administrator all the same)
    by = None if registrant.endpoint_id == OPERATOR_ID else registrant.endpoint_id
    by_admin = registrant.is_admin
    if v.symmetric_key is not None:
        if len(v.symmetric_key) not in (16, 24, 32):
            raise InvalidParameter(f"symmetric wrapping key {v.key_id} must be an AES key of "
                                   "128, 192 or 256 bits")
        info = WrappingKeyInfo(target.endpoint_id, v.key_id, WrappingKeyKind.SYMMETRIC, ctx.now,
                               ordinal, registered_by=by, by_admin=by_admin)
        master_id, aead = ctx.sealing_key()
        sealed = sealing.seal_with(aead, sealing.kek_aad(target.endpoint_id, v.key_id),
                                   v.symmetric_key)
        ctx.uow.endpoints.insert_wrapping_key(info, sealed, master_id, None)
        return
    assert v.certificate is not None
    try:
        cert = load_certificate(v.key_id, v.certificate).certificate
    except ValueError as exc:
        raise InvalidParameter(str(exc)) from None
    not_before = cert.not_valid_before_utc.astimezone(UTC).replace(tzinfo=None)
    not_after = cert.not_valid_after_utc.astimezone(UTC).replace(tzinfo=None)
    if not not_before <= ctx.now < not_after:
        raise InvalidParameter(f"certificate {v.key_id} is not valid now "
                               f"({not_before:%Y-%m-%d} to {not_after:%Y-%m-%d})")
    info = WrappingKeyInfo(target.endpoint_id, v.key_id, WrappingKeyKind.CERTIFICATE, ctx.now,
                           ordinal, not_after, by, by_admin)
    ctx.uow.endpoints.insert_wrapping_key(info, None, None, v.certificate)


def _target(ctx: RequestContext, caller: Endpoint, endpoint_id: str | None) -> Endpoint:
    """The caller itself, a PEP it registered, or (administrators) an endpoint in whose
    every realm the administrator holds Edit: a wrapping key decides who can open what
    the endpoint receives (issue 12.4)."""
    if endpoint_id is None or endpoint_id == caller.endpoint_id:
        return caller
    ep = ctx.uow.endpoints.get_endpoint(endpoint_id)
    if ep is None:
        raise NotFound(f"no endpoint {endpoint_id}")
    if ep.kind is EndpointKind.PEP and ep.owner_id == caller.endpoint_id:
        return ep
    if caller.is_admin:
        need_everywhere(ctx, ep.realms, Right.EDIT, f"endpoint {endpoint_id}")
        return ep
    raise PermissionDenied(f"{caller.name} may not set the wrapping keys of {endpoint_id}")
