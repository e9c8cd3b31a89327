"""WS-Management ResourceURIs: one per object kind, `urn:kms-ws:p1619.3:1/<Kind>` (the
kind's schema element: Key, KeyTemplate, Client, ...). The service names object kinds
(service.transfer); this maps a request's ResourceURI to the kind it names and a kind
back to its URI."""

from __future__ import annotations

from ..service.ws_messages import ResourceName
from ..xmlns import KMS

_PREFIX = KMS + "/"


def uri_of(kind: str) -> str:
    return _PREFIX + kind


KEY_URI = uri_of("Key")


def named(uri: str | None) -> ResourceName:
    """The resource a request's wsman:ResourceURI names (kind None: none of ours)."""
    given = uri or ""
    kind = given[len(_PREFIX):] if given.startswith(_PREFIX) else None
    return ResourceName(kind or None, given)
