"""§6.11/§6.12 update types: what a GetUpdateList or a subscription is about.

`Keys` (the keys of the scope: a client's, or a PEP's) and `AllKeys` (every key the
caller may read), and the custom types: administered objects that take a place on the
store-wide change sequence — each policy kind by its element name, `Policies` (all six),
`KeyTemplate`, `KeyGroup`, `ClientGroup` and `EndpointType`. An object is listed, and its changes
notified, to a caller with the Read right in one of its realms, exactly like a key."""

from __future__ import annotations

KEY_TYPES = ("Keys", "AllKeys")
POLICY_KINDS = ("KeyAssignmentPolicy", "RetentionPolicy", "WrappingPolicy", "AuditPolicy",
                "AccessDistributionPolicy", "CachingPolicy")
# custom type -> the object kinds it lists
CUSTOM_TYPES: dict[str, tuple[str, ...]] = {
    "Policies": POLICY_KINDS, **{kind: (kind,) for kind in POLICY_KINDS},
    "KeyTemplate": ("KeyTemplate",), "KeyGroup": ("KeyGroup",),
    "ClientGroup": ("ClientGroup",), "EndpointType": ("EndpointType",)}
TEMPLATE_TYPE = "KeyTemplate"  # kept in its own table (the others: the objects table)
UPDATE_TYPES = KEY_TYPES + tuple(CUSTOM_TYPES)


def types_of(kind: str) -> tuple[str, ...]:
    """The custom types that list objects of `kind` (none: its changes are not listed)."""
    return tuple(t for t, kinds in CUSTOM_TYPES.items() if kind in kinds)
