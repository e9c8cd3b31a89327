"""§4.6 a PEP authenticated through an untrusted client: its AUTHENTICATION_POLICY and
its own proof (kms:PepCredential, checked by security.proofs) on a request made on its behalf.

A PEP whose authentication policy is AsymmetricKey or SymmetricKey (set at registration
from the credential it registers, changed by an administrator) gets no key, no update list
and no subscription through any client unless the request carries a fresh proof it made
for exactly this operation, key (or update type and NotifyTo) and message, with its
registered AUTHENTICATION_VALUES of that type; without such values it gets nothing (fail
closed). A PEP whose policy is None is served on its client's word (§4.6's default); a
proof sent for it is still verified, and refused when nothing registered could verify it.
Accepted proofs enter the store's replay cache under the PEP's id; a proof the operation
does not consume is refused (KmsService). A key made for a self-authenticating PEP is
delivered only wrapped to a PEP that proved itself in the same request, never to a client
alone.

What WS-Management requests made for a PEP bind (the Operation is the wsa:Action, which
the request carries: kms_ws.wsman names it):
  Enumerate (GetUpdateList scoped to the PEP): UpdateType;
  Subscribe (UpdatePending for the PEP's keys): UpdateType, NotifyTo, EndTo (if given).
Pull, Renew and Release continue under the MAC-protected enumeration context, which
records the PEP scope and that it was proved.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..domain.errors import (
    PepProofRequired,
    ReplayedMessage,
    SignatureInvalid,
    UnknownSigner,
    WrappingUnavailable,
)
from ..domain.model import PEP_AUTH_NONE, Endpoint, Key
from ..security.proofs import Bound, proof_digest, verify_pep_proof
from .authentication import credential_key
from .context import RequestContext


def proof_required(pep: Endpoint) -> bool:
    return (pep.authentication_policy or PEP_AUTH_NONE) != PEP_AUTH_NONE


def require_pep_layer(pep: Endpoint | None, pep_keys: Sequence[object]) -> None:
    """A PEP that authenticates itself does not trust its client with its keys: they are
    delivered with the inner layer wrapped to the PEP, so it must have a wrapping key."""
    if pep is not None and proof_required(pep) and not pep_keys:
        raise WrappingUnavailable(f"PEP {pep.endpoint_id} authenticates itself, so its keys "
                                  "travel wrapped to it; it has no usable wrapping key "
                                  "(RegisterWrappingValues)")


def require_owner_proof(ctx: RequestContext, key: Key, pep: Endpoint | None) -> None:
    """A key made for a PEP that authenticates itself goes only to a PEP that proved
    itself (and so gets it wrapped to it): not to its client, nor through a PEP that
    takes its client's word."""
    if key.pep_id is None or (pep is not None and proof_required(pep)):
        return
    owner = ctx.uow.endpoints.get_endpoint(key.pep_id)
    if owner is not None and proof_required(owner):
        raise PepProofRequired(f"key {key.key_id} is PEP {key.pep_id}'s, which authenticates "
                               "itself: it is delivered only for that PEP, with its proof")


def reject_unused_proof(ctx: RequestContext) -> None:
    """A proof the operation did not verify is refused: it was made for another request."""
    if ctx.pep_proof is not None and not ctx.pep_proof_verified:
        raise SignatureInvalid("this request takes no PEP proof (kms:PepCredential); a PEP "
                               "proves GetKey, CreateKey, StoreKey, and Enumerate or "
                               "Subscribe scoped to it")


def authenticate_pep(ctx: RequestContext, pep: Endpoint, operation: str,
                     key_id: str | None, bound: Bound = ()) -> None:
    """Raises unless the request may act for `pep`; call before anything is delivered."""
    proof = ctx.pep_proof
    if proof is None:
        if proof_required(pep):
            raise PepProofRequired(f"PEP {pep.endpoint_id} authenticates itself: the request "
                                   "must carry its proof (kms:PepCredential)")
        return
    if proof.pep_id != pep.endpoint_id:
        raise SignatureInvalid(f"the PEP proof is for PEP {proof.pep_id}, not for "
                               f"{pep.endpoint_id}")
    row = ctx.uow.endpoints.endpoint_credential(endpoint_id=pep.endpoint_id)
    if row is None:
        raise UnknownSigner(f"PEP {pep.endpoint_id} has no registered credential to prove "
                            "with")
    if proof_required(pep) and row.credential_type != pep.authentication_policy:
        raise UnknownSigner(f"PEP {pep.endpoint_id} must prove itself with a "
                            f"{pep.authentication_policy} credential; none is registered")
    key = credential_key(ctx.master, row, ctx.now)
    until = verify_pep_proof(key, proof, operation, key_id, ctx.settings, ctx.now, bound)
    if not ctx.uow.replay.remember_message(pep.endpoint_id,
                                           proof_digest(operation, proof, key_id, bound),
                                           until, ctx.now):
        raise ReplayedMessage("this PEP proof was already used (replay)")
    ctx.pep_proof_verified = True
