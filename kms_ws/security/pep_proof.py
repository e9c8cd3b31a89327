"""§4.6 a PEP's own proof for a request a KMS client makes on its behalf: the
kms:PepCredential header a PEP signs (the PEP side; the server reads it in codec.kms and
checks it with security.proofs, which describes what is signed).

The client carries the header (PepId, Created, SignatureMethod, SignatureValue) with
the request; it cannot be moved to another request, PEP or key, and the replay cache
refuses a second use.
"""

from __future__ import annotations

import base64
from datetime import datetime

from lxml import etree

from ..xmlns import KMS
from .proofs import ALGORITHMS, Bound, proof_input
from .wssecurity import SigningKey, _raw_signature, _time

_K = f"{{{KMS}}}"


def sign(key: SigningKey, operation: str, pep_id: str, key_id: str | None, message_id: str,
         now: datetime, bound: Bound = ()) -> etree._Element:
    """The kms:PepCredential header for one request (the PEP side)."""
    if key.algorithm.value not in ALGORITHMS:
        raise ValueError(f"a PEP proof is signed with SHA-256, not {key.algorithm.value}")
    created = _time(now)
    value = _raw_signature(key, proof_input(operation, pep_id, key_id, message_id, created,
                                            bound))
    el = etree.Element(_K + "PepCredential", nsmap={"kms": KMS})
    for name, text in (("PepId", pep_id), ("Created", created),
                       ("SignatureMethod", key.algorithm.value),
                       ("SignatureValue", base64.b64encode(value).decode())):
        etree.SubElement(el, _K + name).text = text
    return el
