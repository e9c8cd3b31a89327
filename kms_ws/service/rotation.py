"""Online master-key rotation: re-seal every stored key value, KEK, HMAC signing secret
and the audit chain's key under a new master key while the server keeps serving.

1. `begin`: the provider creates a new master key; one write transaction records it as
   current (kms_meta master_key_current). From then on every new value is sealed under it
   (the service reads the pointer inside each write transaction).
2. `reseal_batch`: up to N rows still under an older key are read and re-sealed in a
   read-only unit of work, then written by one short write transaction of compare-and-set
   updates (on the row's sealed bytes, master key id and version: a row a request changed
   meanwhile is already sealed under the new key, or erased, and is left alone). The
   rotation holds the store's one write lock only for those updates, never while it reads
   or seals, so requests that write (every GetKey records its delivery) are not starved
   by it. Key values are read in key id order from a cursor, each batch on from the last.
   Repeat until none is left.
   Each batch commits on its own, so an interrupted rotation resumes where it stopped.
3. `finish`: in a write transaction, check that no row uses an older key; only then are
   the older master keys destroyed in the provider.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..crypto import sealing
from ..crypto.master_key import Keyring
from .ports import Store


@dataclass(frozen=True)
class RotationState:
    current: str
    pending: int  # sealed rows under an older master key
    counts: dict[str, int]


def state(db: Store) -> RotationState:
    with db.unit_of_work() as uow:
        current = uow.sealed.current_master_key_id() or ""
        counts = uow.sealed.sealed_counts()
    return RotationState(current, sum(n for mk, n in counts.items() if mk != current), counts)


def begin(db: Store, keyring: Keyring) -> tuple[str, bool]:
    """Start a rotation, or resume one that left rows under an older key.
    Returns (the current master key id, resumed)."""
    st = state(db)
    if st.pending:
        return st.current, True
    new = keyring.provider.create()
    keyring.aead_for(new)  # it opens before anything depends on it
    with db.unit_of_work(write=True) as uow:
        uow.sealed.set_meta("master_key_current", new)
    return new, False


@dataclass(frozen=True)
class Batch:
    looked_at: int  # rows found under an older master key (0: none is left)
    resealed: int  # of them, re-sealed by this batch (the others a request re-sealed)
    after_key: str  # the cursor for the next batch


def reseal_batch(db: Store, keyring: Keyring, batch: int, after_key: str = "") -> Batch:
    """Re-seal up to `batch` rows under the current master key, key values after the key
    id `after_key` ("" from the first)."""
    with db.unit_of_work(read_only=True) as uow:
        current = uow.sealed.current_master_key_id()
        assert current is not None
        rows = uow.sealed.sealed_not_under(current, batch, after_key)
    new = keyring.aead_for(current)
    resealed = [(row, sealing.seal_with(new, _AAD[row[0]](row[1], row[2])[0],
                                        unseal_row(keyring, *row))) for row in rows]
    done = 0
    if resealed:
        with db.unit_of_work(write=True) as uow:
            if uow.sealed.current_master_key_id() != current:  # a rotation began meanwhile
                return Batch(len(rows), 0, after_key)
            done = uow.sealed.reseal(resealed, current)
    keys = [a for kind, a, *_ in rows if kind == "key"]
    return Batch(len(rows), done, keys[-1] if keys else after_key)


# Sealed row kinds: key values, wrapping KEKs, endpoints' HMAC signing secrets, the audit
# chain's key.
_AAD = {
    "key": lambda key_id, version: (sealing.key_aad(key_id, version), f"key {key_id}"),
    "kek": lambda ep, kid: (sealing.kek_aad(ep, kid), f"wrapping key {kid} of {ep}"),
    "secret": lambda ep, _: (sealing.secret_aad(ep), f"the signing secret of {ep}"),
    "audit": lambda chain, _: (sealing.audit_key_aad(chain), f"the key of audit chain {chain}"),
}


def unseal_row(keyring: Keyring, kind: str, a: str, b: str, master_key_id: str,
               sealed: bytes) -> bytes:
    """The value of one sealed row (a kind of _AAD) under the master key it names; SealError
    when it does not open."""
    aad, what = _AAD[kind](a, b)
    return sealing.unseal_with(keyring.aead_for(master_key_id), aad, sealed, what)


def finish(db: Store, keyring: Keyring) -> list[str] | None:
    """Destroy the older master keys if no row uses them; None while some still do."""
    st = state(db)
    with db.unit_of_work(write=True) as uow:  # serialised with every sealing write
        current = uow.sealed.current_master_key_id()
        if any(mk != current for mk in uow.sealed.sealed_counts()):
            return None
    retired = [k for k in keyring.provider.key_ids() if k != st.current and k != current]
    for key_id in retired:
        keyring.provider.destroy(key_id)
    return retired
