"""Online master-key rotation: re-seal every stored key value, KEK, HMAC signing secret
and the audit chain's key under a new master key while the server keeps serving.

1. `begin`: the provider creates a new master key; one write transaction records it as
   current (kms_meta master_key_current). From then on every new value is sealed under it
   (the service reads the pointer inside each write transaction).
2. `reseal_batch`: one short write transaction re-seals up to N rows still under an older
   key (compare-and-set on the row's master key id and version). Repeat until none is left.
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


def reseal_batch(db: Store, keyring: Keyring, batch: int) -> int:
    """Re-seal up to `batch` rows under the current master key; returns how many."""
    with db.unit_of_work(write=True) as uow:
        current = uow.sealed.current_master_key_id()
        assert current is not None
        new = keyring.aead_for(current)
        rows = uow.sealed.sealed_not_under(current, batch)
        for kind, a, b, old, sealed in rows:
            value = unseal_row(keyring, kind, a, b, old, sealed)
            resealed = sealing.seal_with(new, _AAD[kind](a, b)[0], value)
            if kind == "key":
                uow.sealed.reseal_key(a, b, old, resealed, current)
            elif kind == "kek":
                uow.sealed.reseal_kek(a, b, old, resealed, current)
            elif kind == "secret":
                uow.sealed.reseal_secret(a, old, resealed, current)
            else:
                uow.sealed.reseal_audit_key(a, old, resealed, current)
        return len(rows)


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
