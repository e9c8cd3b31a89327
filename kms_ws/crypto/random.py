"""The OS CSPRNG, the only source of key material and random bytes."""

from __future__ import annotations

import secrets


def random_bytes(n: int) -> bytes:
    return secrets.token_bytes(n)


def generate_key(length_bits: int) -> bytes:
    if length_bits % 8:
        raise ValueError("key length must be a whole number of bytes")
    return secrets.token_bytes(length_bits // 8)
