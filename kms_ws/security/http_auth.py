"""Transport credentials: HTTP Basic, TLS client certificates."""

from __future__ import annotations

import base64
import binascii
import ssl
from typing import Any


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


def peer_certificate(environ: dict[str, Any]) -> bytes | None:
    """The DER certificate a TLS client authenticated with (gunicorn verified it against
    the configured client CA), or None."""
    sock = environ.get("gunicorn.socket")
    if not isinstance(sock, ssl.SSLSocket):
        return None
    try:
        return sock.getpeercert(binary_form=True)
    except (ValueError, OSError):
        return None
