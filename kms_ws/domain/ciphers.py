"""CIPHER_TYPE (§4.1.1): the cipher OIDs we generate keys for, and their key lengths."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidParameter


@dataclass(frozen=True)
class Cipher:
    oid: str
    name: str
    lengths: tuple[int, ...]  # allowed key lengths in bits


CIPHERS: dict[str, Cipher] = {
    c.oid: c
    for c in (
        Cipher("2.16.840.1.101.3.4.1.6", "AES-128-GCM", (128,)),
        Cipher("2.16.840.1.101.3.4.1.26", "AES-192-GCM", (192,)),
        Cipher("2.16.840.1.101.3.4.1.46", "AES-256-GCM", (256,)),
        Cipher("2.16.840.1.101.3.4.1.2", "AES-128-CBC", (128,)),
        Cipher("2.16.840.1.101.3.4.1.42", "AES-256-CBC", (256,)),
        # IEEE 1619 XTS-AES: two AES keys concatenated.
        Cipher("1.3.111.2.1619.0.1.1", "XTS-AES-128", (256,)),
        Cipher("1.3.111.2.1619.0.1.2", "XTS-AES-256", (512,)),
    )
}

DEFAULT_CIPHER = "2.16.840.1.101.3.4.1.46"
_DEFAULT_FOR_LENGTH = {128: "2.16.840.1.101.3.4.1.6", 192: "2.16.840.1.101.3.4.1.26",
                       256: DEFAULT_CIPHER, 512: "1.3.111.2.1619.0.1.2"}


def resolve(cipher_type: str | None, length_bits: int | None) -> tuple[str, int]:
    """Pick (oid, length) from what a request gives; refuse inconsistent pairs."""
    if cipher_type is None:
        if length_bits is None:
            return DEFAULT_CIPHER, 256
        oid = _DEFAULT_FOR_LENGTH.get(length_bits)
        if oid is None:
            raise InvalidParameter(f"no default cipher for a {length_bits}-bit key",
                                   supported=tuple(CIPHERS))
        return oid, length_bits
    cipher = CIPHERS.get(cipher_type)
    if cipher is None:
        raise InvalidParameter(f"unsupported CipherType {cipher_type}", supported=tuple(CIPHERS))
    if length_bits is None:
        return cipher.oid, cipher.lengths[0]
    if length_bits not in cipher.lengths:
        raise InvalidParameter(
            f"{cipher.name} takes {'/'.join(map(str, cipher.lengths))}-bit keys, not {length_bits}")
    return cipher.oid, length_bits
