"""Client and PEP side of key delivery: open a KeyBlob with the caller's own wrapping keys.

    from kms_ws.client import KmsClient, Kek
    kms = KmsClient(url, "alice", pw, wrapping_keys=[Kek("alice-kek-1", kek_bytes)])
    key = kms.get_key(key_id)            # key.value is the key, unwrapped and verified

A key created or fetched for a PEP that registered its own wrapping key arrives double
wrapped: the client removes its (outer) layer and gets `key.pep_blob`, which only the PEP
opens — `PepUnwrapper([...the PEP's keys...]).open(key.pep_blob)` on the PEP side.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..crypto.wrapping import (
    NONE,
    Kek,
    Opener,
    PrivateKeyHolder,
    UnwrapError,
    check_value,
    unwrap,
    verify_check_value,
    wrap,
)

__all__ = ["Kek", "KeyUnwrapError", "PepBlob", "PepUnwrapper", "PrivateKeyHolder", "Unwrapper"]


class KeyUnwrapError(Exception):
    """A delivered key blob could not be opened. Names the wrapping key and the KMS key."""

    def __init__(self, message: str, wrapping_key_id: str | None = None,
                 key_id: str | None = None) -> None:
        super().__init__(message)
        self.wrapping_key_id, self.key_id = wrapping_key_id, key_id


@dataclass(frozen=True)
class PepBlob:
    """The inner layer of a double-wrapped key: for the PEP, opaque to the client."""

    key_id: str
    wrapping_type: str
    wrapping_key_id: str
    length: int
    data: bytes = field(repr=False)
    check_value: bytes | None = None


@dataclass(frozen=True)
class BlobFields:
    key_id: str
    wrapping_type: str
    wrapping_key_id: str | None
    inner_wrapping_type: str | None
    inner_wrapping_key_id: str | None
    length: int
    data: bytes = field(repr=False)
    check_value: bytes | None = None


class Unwrapper:
    """Opens blobs with a set of wrapping keys, chosen by the blob's WrappingKeyId."""

    def __init__(self, keys: Iterable[Opener] = ()) -> None:
        self._keys = {k.key_id: k for k in keys}

    def open_layer(self, wrapping_type: str, wrapping_key_id: str | None, data: bytes,
                   key_id: str) -> bytes:
        opener = self._keys.get(wrapping_key_id or "")
        if opener is None:
            raise KeyUnwrapError(f"key {key_id} is wrapped ({wrapping_type}) for wrapping key "
                                 f"{wrapping_key_id}, which this caller does not hold",
                                 wrapping_key_id, key_id)
        try:
            return unwrap(wrapping_type, data, opener)
        except UnwrapError as exc:
            raise KeyUnwrapError(f"key {key_id}: wrapping key {wrapping_key_id} does not open "
                                 f"its blob: {exc}", wrapping_key_id, key_id) from None

    def blob_for_server(self, value: bytes, wrapping_type: str,
                        wrapping_key_id: str | None) -> dict[str, object]:
        """A StoreKey KeyBlob: the key as is, or wrapped under one of our KEKs."""
        if wrapping_type == NONE:
            return {"ProtocolVersion": 1, "WrappingType": NONE, "Length": len(value),
                    "Data": value}
        kek = self._keys.get(wrapping_key_id or "")
        if not isinstance(kek, Kek):
            raise KeyUnwrapError(f"no KEK {wrapping_key_id} to wrap the key with",
                                 wrapping_key_id)
        return {"ProtocolVersion": 1, "WrappingType": wrapping_type,
                "WrappingKeyId": kek.key_id, "Length": len(value),
                "Data": wrap(wrapping_type, value, kek), "CheckValue": check_value(value)}

    def open_key(self, b: BlobFields) -> tuple[bytes | None, PepBlob | None]:
        """(the key, None) or, double wrapped, (None, the PEP's blob)."""
        data = b.data
        if b.wrapping_type != NONE:
            data = self.open_layer(b.wrapping_type, b.wrapping_key_id, data, b.key_id)
        if b.inner_wrapping_type:
            return None, PepBlob(b.key_id, b.inner_wrapping_type, b.inner_wrapping_key_id or "",
                                 b.length, data, b.check_value)
        return _verified(data, b.length, b.check_value, b.wrapping_key_id, b.key_id), None


class PepUnwrapper(Unwrapper):
    """The PEP-side helper: opens the inner layer with the PEP's own KEK or private key."""

    def open(self, blob: PepBlob) -> bytes:
        data = self.open_layer(blob.wrapping_type, blob.wrapping_key_id, blob.data, blob.key_id)
        return _verified(data, blob.length, blob.check_value, blob.wrapping_key_id,
                         blob.key_id)


def _verified(value: bytes, length: int, check: bytes | None, wrapping_key_id: str | None,
              key_id: str) -> bytes:
    if len(value) != length:
        raise KeyUnwrapError(f"key {key_id}: {len(value)} bytes unwrapped, the blob says "
                             f"{length}: wrong wrapping key or corrupted blob",
                             wrapping_key_id, key_id)
    try:
        verify_check_value(value, check, wrapping_key_id)
    except UnwrapError as exc:
        raise KeyUnwrapError(f"key {key_id}: {exc}", wrapping_key_id, key_id) from None
    return value
