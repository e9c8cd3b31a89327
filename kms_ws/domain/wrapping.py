"""§4.2 KeyBlob wrapping and §4.6/§4.7 WRAPPING_VALUES: which layers a delivery gets.

`decide` is THE one place that chooses the wrapping of a delivery. Its inputs:
  * the resolved §5.3 wrapping policy (domain.wrapping_policy): its inner choice sets the
    mode of the layer for the PEP, its outer choice the mode of the layer for the client;
    without a PEP, a key-side policy's mode applies to the client's layer;
  * what the recipients registered: the client's wrapping keys → the outer layer, the
    PEP's → the inner layer (so a key passes through the client to the PEP unseen); with
    keys but no policy, the default mode of the newest key;
  * the WrappingType the client asked for (honoured only where the policy allows it);
  * whether unwrapped delivery is allowed on this transport.
It never falls back to an unwrapped delivery when a wrapping is required.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from .errors import InvalidParameter, UnsupportedWrapping, WrappingRequired, WrappingUnavailable
from .wrapping_policy import WrappingChoice, WrappingResolution

NONE = "none"
AES_KW = "aes-key-wrap"
AES_KWP = "aes-key-wrap-pad"
CMS_KEK = "cms-kek"
CMS_RSA_OAEP = "cms-rsa-oaep"
CMS_AUTH = "cms-auth-enveloped"

WRAPPED_TYPES = (AES_KW, AES_KWP, CMS_KEK, CMS_RSA_OAEP, CMS_AUTH)
ALL_TYPES = (NONE, *WRAPPED_TYPES)


class WrappingKeyKind(str, enum.Enum):  # noqa: UP042 - StrEnum would change str() and f"{}" of every member
    SYMMETRIC = "SymmetricKey"
    CERTIFICATE = "Certificate"


TYPES_FOR: dict[WrappingKeyKind, tuple[str, ...]] = {
    WrappingKeyKind.SYMMETRIC: (AES_KW, AES_KWP, CMS_KEK, CMS_AUTH),
    WrappingKeyKind.CERTIFICATE: (CMS_RSA_OAEP, CMS_AUTH),
}
DEFAULT_FOR = {WrappingKeyKind.SYMMETRIC: AES_KWP, WrappingKeyKind.CERTIFICATE: CMS_RSA_OAEP}

# §5.3.1 WRAPPING_TYPE -> the kind of wrapping key a policy of that type wraps under (its
# modes: TYPES_FOR that kind). Signature is not served: no mode of ours signs a blob.
POLICY_TYPES: dict[str, WrappingKeyKind] = {"Symmetric": WrappingKeyKind.SYMMETRIC,
                                            "Asymmetric": WrappingKeyKind.CERTIFICATE}


def check_policy_type(wrapping_type: str, wrapping_mode: str) -> None:
    """A wrapping policy's WRAPPING_TYPE and WRAPPING_MODE agree (InvalidParameter naming
    what would fit): the type is one this server serves, the mode wraps that way."""
    kind = POLICY_TYPES.get(wrapping_type)
    if kind is None:
        raise InvalidParameter(
            f"WrappingType {wrapping_type} is not supported: no wrapping mode of this server "
            "signs a key blob", supported=tuple(POLICY_TYPES))
    if wrapping_mode not in TYPES_FOR[kind]:
        raise InvalidParameter(
            f"WrappingMode {wrapping_mode} does not fit WrappingType {wrapping_type} "
            f"(a {kind.value} wrapping key)", supported=TYPES_FOR[kind])


@dataclass(frozen=True)
class WrappingKeyInfo:
    """A registered wrapping key, without its secret. `ordinal` orders registrations.
    `registered_by`: the endpoint that registered it (None: unknown — registered before
    this was recorded — or since deleted); `by_admin`: it was an administrator. They decide
    whether the key may carry a Reference-only delivery (service.key_delivery)."""

    endpoint_id: str
    key_id: str
    kind: WrappingKeyKind
    created_at: datetime
    ordinal: int
    not_after: datetime | None = None  # certificates
    registered_by: str | None = None
    by_admin: bool = False


@dataclass(frozen=True)
class Layer:
    wrapping_type: str
    key: WrappingKeyInfo


@dataclass(frozen=True)
class DeliveryPlan:
    """outer: for the caller; inner: for the PEP. Both None: unwrapped delivery."""

    outer: Layer | None = None
    inner: Layer | None = None


@dataclass(frozen=True)
class KeyBlob:
    wrapping_type: str
    length: int
    data: bytes = field(repr=False)
    wrapping_key_id: str | None = None
    inner_wrapping_type: str | None = None
    inner_wrapping_key_id: str | None = None
    check_value: bytes | None = None


def usable(keys: Sequence[WrappingKeyInfo], now: datetime) -> list[WrappingKeyInfo]:
    """Newest first; certificates past their validity are left out."""
    live = [k for k in keys if k.not_after is None or k.not_after > now]
    return sorted(live, key=lambda k: k.ordinal, reverse=True)


def decide(requested: str | None, client_keys: Sequence[WrappingKeyInfo],
           pep_keys: Sequence[WrappingKeyInfo], unwrapped_allowed: bool,
           policy: WrappingResolution | None = None, to_pep: bool = False) -> DeliveryPlan:
    """The wrapping of one delivery. Keys newest first (see `usable`)."""
    inner_choice, outer_choice = _policy_layers(policy, to_pep)
    inner = _layer(inner_choice, pep_keys, "the PEP") if inner_choice else \
        (Layer(DEFAULT_FOR[pep_keys[0].kind], pep_keys[0]) if pep_keys else None)
    if requested is not None and requested not in ALL_TYPES:
        raise UnsupportedWrapping(f"wrapping type {requested!r} is not supported",
                                  supported=_offer(client_keys, unwrapped_allowed or inner))
    if outer_choice is not None:
        outer_mode = outer_choice.wrapping_mode
        if requested not in (None, outer_mode):
            raise UnsupportedWrapping(f"the wrapping policy requires {outer_mode}, not "
                                      f"{requested}", supported=(outer_mode,))
        return DeliveryPlan(_layer(outer_choice, client_keys, "the client"), inner)
    if requested is None:
        if client_keys:
            return DeliveryPlan(Layer(DEFAULT_FOR[client_keys[0].kind], client_keys[0]), inner)
        requested = NONE
    if requested == NONE:
        if inner is not None and not client_keys:
            return DeliveryPlan(None, inner)  # the key itself stays wrapped for the PEP
        if client_keys:
            raise WrappingRequired("this client registered wrapping keys: keys are delivered "
                                   "to it wrapped only", supported=_offer(client_keys, False))
        if not unwrapped_allowed:
            raise WrappingRequired("unwrapped delivery is not allowed on this transport; use "
                                   "TLS or register a wrapping key (RegisterWrappingValues)",
                                   supported=())
        return DeliveryPlan(None, inner)
    fit = [k for k in client_keys if requested in TYPES_FOR[k.kind]]
    if not fit:
        raise UnsupportedWrapping(
            f"wrapping type {requested} needs a registered "
            f"{' or '.join(sorted(k.value for k, v in TYPES_FOR.items() if requested in v))}"
            " wrapping key", supported=_offer(client_keys, unwrapped_allowed and not client_keys))
    return DeliveryPlan(Layer(requested, fit[0]), inner)


def _policy_layers(policy: WrappingResolution | None, to_pep: bool
                   ) -> tuple[WrappingChoice | None, WrappingChoice | None]:
    """(inner, outer) policies a delivery must wrap by."""
    if policy is None:
        return None, None
    if not to_pep:  # no PEP to wrap for: the key-side requirement binds the client's layer
        return None, policy.outer or policy.inner
    return policy.inner, policy.outer


def _layer(choice: WrappingChoice, keys: Sequence[WrappingKeyInfo], whom: str) -> Layer:
    """The layer a policy requires: its mode, under a wrapping key of its WRAPPING_TYPE.
    A policy whose type and mode disagree (stored before they were checked) delivers
    nothing until an administrator corrects it."""
    mode, kind = choice.wrapping_mode, POLICY_TYPES.get(choice.wrapping_type)
    if kind is None or mode not in TYPES_FOR[kind]:
        raise WrappingUnavailable(
            f"wrapping policy {choice.policy_id} cannot be applied: WrappingType "
            f"{choice.wrapping_type} with WrappingMode {mode} (an administrator must "
            "correct the policy)", supported=TYPES_FOR[kind] if kind else ())
    fit = [k for k in keys if k.kind is kind]
    if not fit:
        raise WrappingUnavailable(f"wrapping policy {choice.policy_id} requires {mode} under "
                                  f"a {kind.value} wrapping key (WrappingType "
                                  f"{choice.wrapping_type}), and {whom} has none registered",
                                  supported=(mode,))
    return Layer(mode, fit[0])


def _offer(client_keys: Sequence[WrappingKeyInfo], none_ok: object) -> tuple[str, ...]:
    """The wrapping types this caller can be served now."""
    kinds = {k.kind for k in client_keys}
    types = [t for t in WRAPPED_TYPES if any(t in TYPES_FOR[k] for k in kinds)]
    return ((NONE,) if none_ok and not client_keys else ()) + tuple(types)
