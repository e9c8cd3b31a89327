"""Transport credentials: HTTP Basic."""

from __future__ import annotations

import base64
import binascii


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """(username, password) from an Authorization header, or None if it is not Basic."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        return None
    return user, password
