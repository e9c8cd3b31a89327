"""Password hashing: salted scrypt, stored as 'scrypt$n$r$p$salt$hash' (base64).

`verify_decoy` costs what checking a password costs and checks nothing: what an unknown
user name or a locked client gets, so that neither the answer nor its time tells them
apart from a wrong password."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1
_DKLEN = 32


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P,
                            dklen=_DKLEN, maxmem=64 * 1024 * 1024)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt),
                             n=int(n), r=int(r), p=int(p), dklen=len(expected),
                             maxmem=64 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


# A stored hash no password matches (a random digest): scrypt with the parameters new
# passwords get, over a random salt per process.
_DECOY = (f"scrypt${_N}${_R}${_P}${_b64(secrets.token_bytes(16))}$"
          f"{_b64(secrets.token_bytes(_DKLEN))}")


def verify_decoy(password: str) -> bool:
    """One scrypt of the password, as verify_password does, against no real hash."""
    verify_password(password, _DECOY)
    return False
