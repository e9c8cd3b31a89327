"""§5.3 wrapping-policy resolution: which wrapping applies to one delivery.

Pure: given the wrapping policies attached (directly or inherited) to the key, its key
groups, the PEP, the PEP's endpoint type, the client and the client's endpoint type,
return the inner and outer wrapping. The key-wrapping code applies them.

Order of precedence (§5.3):
  1. the key prevails over its key group(s);
  2. the key or key group prevails over the PEP;
  3. the PEP prevails over the PEP's endpoint type;
  4. the client prevails over its client group(s), which prevail over the client's
     endpoint type (several groups with different policies: refused as ambiguous);
  5. a PEP-side policy and a client-side policy together mean a double wrap: first
     (inner) by the policy prevailing for the PEP, then (outer) by the client's.

A key-side policy (rules 1-2) occupies the PEP-side (inner) layer: it governs how the
key itself travels, and the client's policy, if any, still wraps that for transport.
Several key groups with different policies are ambiguous: refused, not guessed.

§5.3.1 WRAPPING_TYPE says what kind of wrapping key a policy wraps under, WRAPPING_MODE
how: Symmetric — a KEK (aes-key-wrap, aes-key-wrap-pad, cms-kek, cms-auth-enveloped
under a KEK); Asymmetric — a certificate (cms-rsa-oaep, cms-auth-enveloped to a
certificate). Signature — a key blob signed rather than encrypted — is a type kms-ws
does not serve: no mode of ours signs a blob, so such a policy is refused, never
approximated. A policy whose mode does not fit its type is refused when it is made or
edited (`domain.wrapping.check_policy_type`); at delivery (one stored before that
check) nothing is sent under it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import AmbiguousReference


@dataclass(frozen=True)
class WrappingChoice:
    policy_id: str
    wrapping_type: str  # Asymmetric | Symmetric | Signature
    wrapping_mode: str  # a KeyBlob WrappingType (aes-key-wrap, cms-..., ...)
    source: str  # key | key-group | pep | pep-endpoint-type | client | client-endpoint-type


@dataclass(frozen=True)
class WrappingResolution:
    inner: WrappingChoice | None  # applied first (for the PEP, or by the key's policy)
    outer: WrappingChoice | None  # applied last (for the client)

    @property
    def layers(self) -> tuple[WrappingChoice, ...]:
        """Wrappings in the order they are applied."""
        return tuple(c for c in (self.inner, self.outer) if c is not None)


def resolve_wrapping(*, key: WrappingChoice | None = None,
                     key_groups: Sequence[WrappingChoice] = (),
                     pep: WrappingChoice | None = None,
                     pep_endpoint_type: WrappingChoice | None = None,
                     client: WrappingChoice | None = None,
                     client_groups: Sequence[WrappingChoice] = (),
                     client_endpoint_type: WrappingChoice | None = None) -> WrappingResolution:
    key_side = key or _one_group_policy(key_groups, "key")
    pep_side = key_side or pep or pep_endpoint_type
    client_side = client or _one_group_policy(client_groups, "client") or client_endpoint_type
    if pep_side is None:
        return WrappingResolution(None, client_side)
    return WrappingResolution(pep_side, client_side)


def _one_group_policy(groups: Sequence[WrappingChoice], whose: str) -> WrappingChoice | None:
    ids = {g.policy_id for g in groups}
    if len(ids) > 1:
        raise AmbiguousReference(f"the {whose}'s groups carry different wrapping policies: "
                                 + ", ".join(sorted(ids)))
    return groups[0] if groups else None
