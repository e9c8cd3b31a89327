"""Key delivery: decide the wrapping of a delivery (domain.wrapping.decide, the one place)
and apply it — inner layer for the PEP, outer layer for the caller — producing the KeyBlob;
and the reverse for StoreKey: open a KeyBlob the caller wrapped under its own KEK."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..crypto import sealing
from ..crypto.wrapping import (
    Kek,
    Recipient,
    UnwrapError,
    check_value,
    load_certificate,
    unwrap,
    verify_check_value,
    wrap,
)
from ..domain.errors import (
    InternalError,
    InvalidParameter,
    NotFound,
    UnsupportedWrapping,
    UnwrapFailed,
    WrappingRequired,
)
from ..domain.model import Endpoint, Key
from ..domain.realms import Right, allows
from ..domain.wrapping import (
    AES_KW,
    ALL_TYPES,
    NONE,
    TYPES_FOR,
    WRAPPED_TYPES,
    DeliveryPlan,
    KeyBlob,
    Layer,
    WrappingKeyInfo,
    WrappingKeyKind,
    decide,
    usable,
)
from ..domain.wrapping_policy import WrappingResolution
from .context import RequestContext
from .messages import StoreKeyRequest


@dataclass
class Delivery:
    """One request's deliveries: what the recipients registered and the client asked for
    (loaded once), and the recipients opened so far."""

    requested: str | None
    client_keys: list[WrappingKeyInfo]
    pep_keys: list[WrappingKeyInfo]
    to_pep: bool
    unwrapped_allowed: bool
    _recipients: dict[tuple[str, str], Recipient] = field(default_factory=dict, repr=False)

    def plan(self, policy: WrappingResolution | None) -> DeliveryPlan:
        return decide(self.requested, self.client_keys, self.pep_keys, self.unwrapped_allowed,
                      policy, self.to_pep)


def start_delivery(ctx: RequestContext, caller: Endpoint, pep: Endpoint | None,
                   requested: str | None) -> Delivery:
    """Refuses an unknown WrappingType before anything is done."""
    client_keys = usable(ctx.uow.endpoints.wrapping_keys(caller.endpoint_id), ctx.now)
    pep_keys = usable(ctx.uow.endpoints.wrapping_keys(pep.endpoint_id), ctx.now) if pep else []
    delivery = Delivery(requested, client_keys, pep_keys, pep is not None,
                        ctx.unwrapped_allowed())
    if requested is not None and requested not in ALL_TYPES:
        delivery.plan(None)  # raises UnsupportedWrapping with what can be served
    return delivery


def for_reference_only(ctx: RequestContext, caller: Endpoint, key: Key,
                       delivery: Delivery) -> Delivery | None:
    """§4.5 "reference (use but not view)": the delivery of `key` to a caller holding
    Reference but not Read on it — wrapped for the PEP under a wrapping key the caller
    cannot open — or None when the PEP has no such key. A PEP's wrapping key is one the
    caller cannot open only when whoever registered it could view the key anyway: an
    administrator, or an endpoint holding Read on the key's realms now. Never the caller
    itself (it knows the KEK, or holds the private key of the certificate it registered),
    nor another endpoint without Read (a second client, a PEP's owner reading elsewhere):
    that would launder the value out. Keys whose registrant is unknown (registered before
    schema 21, or deleted since) do not qualify. The PEP's other keys still serve callers
    holding Read."""
    inner = [k for k in delivery.pep_keys if _opens_only_for_readers(ctx, caller, key, k)]
    return replace(delivery, pep_keys=inner) if inner else None


def _opens_only_for_readers(ctx: RequestContext, caller: Endpoint, key: Key,
                            wrapping_key: WrappingKeyInfo) -> bool:
    by = wrapping_key.registered_by
    if by == caller.endpoint_id:
        return False
    if wrapping_key.by_admin:
        return True
    registrant = ctx.uow.endpoints.get_endpoint(by) if by is not None else None
    return registrant is not None and allows(registrant.grants, key.realms, Right.READ)


def apply(ctx: RequestContext, delivery: Delivery, key: Key,
          policy: WrappingResolution | None) -> Key:
    """Wrap key.value as decided for this key into key.blob. A wrapped delivery clears
    key.value (the plaintext goes no further); an unwrapped one delivers it as is."""
    value = key.value
    assert value is not None
    plan = delivery.plan(policy)
    data = value
    if plan.inner is not None:
        data = _wrap(ctx, delivery, plan.inner, data)
    if plan.outer is not None:
        data = _wrap(ctx, delivery, plan.outer, data)
    wrapped = plan.inner is not None or plan.outer is not None
    key.blob = KeyBlob(
        wrapping_type=plan.outer.wrapping_type if plan.outer else NONE, length=len(value),
        data=data, wrapping_key_id=plan.outer.key.key_id if plan.outer else None,
        inner_wrapping_type=plan.inner.wrapping_type if plan.inner else None,
        inner_wrapping_key_id=plan.inner.key.key_id if plan.inner else None,
        check_value=check_value(value) if wrapped else None)
    if wrapped:
        key.value = None
    return key


def accept(ctx: RequestContext, caller: Endpoint, req: StoreKeyRequest) -> bytes:
    """The key of an incoming StoreKey KeyBlob: unwrapped with the caller's own KEK (named
    by WrappingKeyId), or as is when unwrapped upload is allowed on this transport."""
    if req.inner_wrapping_type is not None:
        raise InvalidParameter("StoreKey takes a key wrapped once, for the server")
    if req.wrapping_type == NONE:
        if not ctx.unwrapped_allowed():
            raise WrappingRequired("an unwrapped key is not accepted on this transport; use "
                                   "TLS or wrap it under a registered KEK",
                                   supported=TYPES_FOR[WrappingKeyKind.SYMMETRIC])
        value = req.value
    else:
        value = _open_upload(ctx, caller, req)
    if req.length != len(value):
        raise InvalidParameter(f"KeyBlob Length {req.length} does not match the "
                               f"{len(value)} bytes of the key")
    try:
        verify_check_value(value, req.check_value, req.wrapping_key_id)
    except UnwrapError as exc:
        raise UnwrapFailed(str(exc)) from None
    return value


def _open_upload(ctx: RequestContext, caller: Endpoint, req: StoreKeyRequest) -> bytes:
    symmetric = TYPES_FOR[WrappingKeyKind.SYMMETRIC]
    if req.wrapping_type not in symmetric:
        raise UnsupportedWrapping(f"StoreKey cannot open {req.wrapping_type}: the server holds "
                                  "no private key of yours", supported=(NONE, *symmetric))
    known = {k.key_id: k for k in ctx.uow.endpoints.wrapping_keys(caller.endpoint_id)}
    info = known.get(req.wrapping_key_id or "")
    if info is None or info.kind is not WrappingKeyKind.SYMMETRIC:
        raise NotFound(f"no symmetric wrapping key {req.wrapping_key_id} is registered for "
                       f"{caller.name}")
    kek = _recipient(ctx, Delivery(None, [], [], False, False), Layer(req.wrapping_type, info))
    assert isinstance(kek, Kek)
    try:
        return unwrap(req.wrapping_type, req.value, kek)
    except UnwrapError as exc:
        raise UnwrapFailed(f"the key does not unwrap under {info.key_id}: {exc}") from None


def _wrap(ctx: RequestContext, delivery: Delivery, layer: Layer, data: bytes) -> bytes:
    try:
        return wrap(layer.wrapping_type, data, _recipient(ctx, delivery, layer))
    except ValueError:
        if layer.wrapping_type != AES_KW:
            raise
        raise UnsupportedWrapping(
            f"aes-key-wrap cannot carry {len(data)} bytes (a multiple of 8, at least 16, is "
            "needed); ask for aes-key-wrap-pad",
            supported=tuple(t for t in WRAPPED_TYPES if t != AES_KW)) from None


def _recipient(ctx: RequestContext, delivery: Delivery, layer: Layer) -> Recipient:
    ref = (layer.key.endpoint_id, layer.key.key_id)
    found = delivery._recipients.get(ref)
    if found is not None:
        return found
    sealed, master_key_id, cert = ctx.uow.endpoints.wrapping_key_material(*ref)
    if layer.key.kind is WrappingKeyKind.CERTIFICATE:
        assert cert is not None
        recipient: Recipient = load_certificate(layer.key.key_id, cert)
    else:
        assert sealed is not None
        aead = ctx.master.aead_for(master_key_id)
        try:
            secret = sealing.unseal_with(aead, sealing.kek_aad(*ref), sealed,
                                         f"wrapping key {layer.key.key_id}")
        except sealing.SealError as exc:
            raise InternalError(str(exc)) from None
        recipient = Kek(layer.key.key_id, secret)
    delivery._recipients[ref] = recipient
    return recipient
