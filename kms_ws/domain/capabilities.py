"""§4.8 capabilities the server supports, and §6.3 negotiation.

Derived from the tables the server acts on, so the list cannot drift from what works:
the credential types authentication accepts (model.SUPPORTED_CREDENTIALS), the KeyBlob
wrapping types delivery makes (wrapping.ALL_TYPES), the §5.3.1 WRAPPING_TYPEs a wrapping
policy may name (wrapping.POLICY_TYPES), the ciphers key creation knows."""

from __future__ import annotations

from .caching import CACHING_TYPES
from .ciphers import CIPHERS
from .model import SUPPORTED_CREDENTIALS
from .wrapping import ALL_TYPES, POLICY_TYPES

MAX_RANDOM_BYTES = 65536

# The §6 operations a client calls (the service's dispatch table less the administrators'
# Admin* and GetEndpointStatus; tests/handlers/test_operations.py holds the two together).
OPERATIONS = (
    "RegisterEndpoint", "RegisterWrappingValues", "Authenticate", "NegotiateCapabilities",
    "GetServerCapabilities",
    "CreateKey", "StoreKey", "GetKey", "GetBindings", "PushAuditMessage", "GetRandomBytes",
)

SERVER_CAPABILITIES: tuple[str, ...] = (
    *(f"operation:{op}" for op in OPERATIONS),
    *(f"credential:{t.value}" for t in SUPPORTED_CREDENTIALS),
    "transport:HttpBasic",
    *(f"wrapping:{t}" for t in ALL_TYPES),
    *(f"wrapping-type:{t}" for t in POLICY_TYPES),
    *(f"cipher:{oid}" for oid in CIPHERS),
    *(f"caching:{t}" for t in CACHING_TYPES),
    "understands-time",
    "key-id:uuid",
    f"random:max-bytes:{MAX_RANDOM_BYTES}",
)


def negotiate(offered: list[str]) -> list[str]:
    """The client's capabilities that the server supports, in the client's order."""
    supported = set(SERVER_CAPABILITIES)
    seen: set[str] = set()
    out = []
    for name in offered:
        if name in supported and name not in seen:
            seen.add(name)
            out.append(name)
    return out
