"""PEP side of §4.6: the PEP's own proof for a request its (untrusted) client makes for it.

    signer = PepSigner(pep_id, load_signing_key(cert_pem, key_pem))  # or hmac_signing_key
    key = kms.get_key(key_id, pep_id=pep_id, pep_proof=signer)      # the client attaches it
    PepUnwrapper([...the PEP's keys...]).open(key.pep_blob)          # only the PEP opens it

    tokens = yield from kms.get_update_list("Keys", pep_id=pep_id, pep_proof=signer)
    kms.subscribe(listener_url, "Keys", pep_id=pep_id, pep_proof=signer)

The client hands the PEP what it signs — operation (GetKey..., or the wsa:Action of a
WS-Management request), key id, the other fields the operation binds (`bound`: update
type, NotifyTo) and the request's wsa:MessageID — and gets back a kms:PepCredential
header; the PEP's key never leaves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from lxml import etree

from ..security import pep_proof
from ..security.wssecurity import SigningKey


class PepProver(Protocol):
    def prove(self, operation: str, pep_id: str, key_id: str | None,
              message_id: str, bound: Sequence[tuple[str, str]] = ()) -> etree._Element: ...


class PepSigner:
    """Signs PEP proofs with the PEP's registered credential (its certificate's private
    key, or its SymmetricKey secret)."""

    def __init__(self, pep_id: str, key: SigningKey) -> None:
        self.pep_id = pep_id
        self._key = key

    def prove(self, operation: str, pep_id: str, key_id: str | None,
              message_id: str, bound: Sequence[tuple[str, str]] = ()) -> etree._Element:
        if pep_id != self.pep_id:
            raise ValueError(f"this signer proves for PEP {self.pep_id}, not {pep_id}")
        return pep_proof.sign(self._key, operation, pep_id, key_id, message_id,
                              datetime.now(UTC).replace(tzinfo=None), bound)
