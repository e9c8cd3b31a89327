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
KEY_KIND = "Key"  # the kind of a key's removals
# every kind an update list holds (a removal's kind)
LISTED_KINDS = (KEY_KIND, *dict.fromkeys(k for kinds in CUSTOM_TYPES.values() for k in kinds))


def kinds_of(update_type: str) -> tuple[str, ...]:
    """The kinds an update type lists."""
    return (KEY_KIND,) if update_type in KEY_TYPES else CUSTOM_TYPES.get(update_type, ())


def types_of(kind: str) -> tuple[str, ...]:
    """The custom types that list objects of `kind` (none: its changes are not listed)."""
    return tuple(t for t, kinds in CUSTOM_TYPES.items() if kind in kinds)
