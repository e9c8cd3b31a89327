"""Transport credentials: HTTP Basic, TLS client certificates."""

from __future__ import annotations

import base64
import binascii
from typing import Any

# The WSGI environ key under which kms_ws.http_worker puts the client's certificate.
PEER_CERTIFICATE = "kms_ws.peer_certificate"


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """(username, password) from an Authorization header, or None if it is not Basic.

    RFC 7617: UTF-8 (what we announce with charset="UTF-8"); bytes that are not UTF-8 are
    read as ISO-8859-1, which is what many clients (python-requests among them) send."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except binascii.Error:
        return None
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        decoded = raw.decode("iso-8859-1")
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        return None
    return user, password


def peer_certificate(environ: dict[str, Any]) -> bytes | None:
    """The DER certificate a TLS client authenticated with (the HTTP front verified it
    against the configured client CA in the handshake), or None."""
    found = environ.get(PEER_CERTIFICATE)
    return found if isinstance(found, bytes) and found else None
