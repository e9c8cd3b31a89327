"""§4.6 a PEP authenticated through an untrusted client: its AUTHENTICATION_POLICY and
its own proof (kms:PepCredential, security.pep_proof) on a request made on its behalf.

A PEP registered with an AsymmetricKey or SymmetricKey credential (its authentication
policy) gets no key through any client unless the request carries a fresh proof it made
for exactly this operation, key and message. A PEP registered without one is served on
its client's word (§4.6's default), and a proof sent for it is refused: nothing could
verify it. Accepted proofs enter the store's replay cache under the PEP's id.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..domain.errors import (PepProofRequired, ReplayedMessage, SignatureInvalid, UnknownSigner,
                             WrappingUnavailable)
from ..domain.model import Endpoint
from ..security import pep_proof
from .authentication import SIGNED, credential_key
from .context import RequestContext


def proof_required(pep: Endpoint) -> bool:
    return pep.credential_type in SIGNED


def require_pep_layer(pep: Endpoint | None, pep_keys: Sequence[object]) -> None:
    """A PEP that authenticates itself does not trust its client with its keys: they are
    delivered with the inner layer wrapped to the PEP, so it must have a wrapping key."""
    if pep is not None and proof_required(pep) and not pep_keys:
        raise WrappingUnavailable(f"PEP {pep.endpoint_id} authenticates itself, so its keys "
                                  "travel wrapped to it; it has no usable wrapping key "
                                  "(RegisterWrappingValues)")


def authenticate_pep(ctx: RequestContext, pep: Endpoint, operation: str,
                     key_id: str | None) -> None:
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
    row = ctx.repo.endpoint_credential(endpoint_id=pep.endpoint_id)
    if row is None or not proof_required(pep):
        raise UnknownSigner(f"PEP {pep.endpoint_id} has no registered credential to prove "
                            "with")
    key = credential_key(ctx.master, row, ctx.now)
    until = pep_proof.verify(key, proof, operation, key_id, ctx.settings, ctx.now)
    if not ctx.repo.remember_message(pep.endpoint_id, pep_proof.digest(operation, proof, key_id),
                                     until, ctx.now):
        raise ReplayedMessage("this PEP proof was already used (replay)")
