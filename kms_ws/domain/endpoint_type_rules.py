"""§4.4 / §4.6: the CIM identity an endpoint presents at registration, and the
administrators' rules that map it to an ENDPOINT_TYPE_ID.

"During registration, KMS_Clients or PEPs will present identifying information that will
allow a KMS_Server to map it to an Endpoint_Type" (§4.4); "KMS Clients shall provide a CIM
PhysicalElement or CIM SoftwareIdentity object upon registration of a PEP" (§4.6).

An identity is a set of CIM properties, each named `Class/Property` (PROPERTIES). A rule
is a list of {Property, Pattern} matches, a Priority and the endpoint type it gives; it
holds for an identity when EVERY match holds: the property is present and the regular
expression matches its whole value (a Pattern selection rule, domain.selection). Of the
rules that hold, the lowest Priority wins; equal priorities: the rule with more matches
(the more specific), then the older rule, then the lower rule id — so one rule always
wins, whatever order the store returns them in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from .errors import InvalidParameter
from .model import NameValue
from .selection import Selector, check, matches

PHYSICAL_ELEMENT = "PhysicalElement"
SOFTWARE_IDENTITY = "SoftwareIdentity"
CLASSES: dict[str, tuple[str, ...]] = {
    PHYSICAL_ELEMENT: ("ElementName", "Manufacturer", "Model", "SKU", "SerialNumber",
                       "PartNumber", "Version", "OtherIdentifyingInfo", "VendorEquipmentType"),
    SOFTWARE_IDENTITY: ("InstanceID", "ElementName", "Manufacturer", "VersionString",
                        "MajorVersion", "MinorVersion", "RevisionNumber", "BuildNumber",
                        "SerialNumber"),
}
PROPERTIES = tuple(f"{cls}/{prop}" for cls, props in CLASSES.items() for prop in props)
MAX_MATCHES = 16


def identity_from_document(doc: Mapping[str, object] | None) -> tuple[NameValue, ...]:
    """A CimIdentity document ({PhysicalElement: {Manufacturer: ...}, ...}) as its
    properties, `Class/Property` = value, in PROPERTIES order."""
    if not doc:
        return ()
    out = []
    for cls, props in CLASSES.items():
        box = doc.get(cls)
        if not isinstance(box, Mapping):
            continue
        for prop in props:
            value = box.get(prop)
            if value is not None and str(value) != "":
                out.append(NameValue(f"{cls}/{prop}", str(value)))
    return tuple(out)


def identity_document(identity: Iterable[NameValue]) -> dict[str, dict[str, str]] | None:
    """The inverse of identity_from_document (None: no identity)."""
    out: dict[str, dict[str, str]] = {}
    for p in identity:
        cls, _, prop = p.name.partition("/")
        out.setdefault(cls, {})[prop] = p.value
    return {cls: out[cls] for cls in CLASSES if cls in out} or None


def check_identity(identity: Sequence[NameValue], given: bool) -> None:
    """`given`: the request carried a CimIdentity element; it must say something."""
    if given and not identity:
        raise InvalidParameter("a CimIdentity names a PhysicalElement or SoftwareIdentity "
                               "with at least one property")
    for p in identity:
        if p.name not in PROPERTIES:
            raise InvalidParameter(f"unknown CIM property {p.name}", supported=PROPERTIES)


@dataclass(frozen=True)
class TypeRule:
    rule_id: str
    priority: int
    matches: tuple[tuple[str, str], ...]  # (Class/Property, regular expression)
    endpoint_type_id: str
    created_at: datetime


def check_rule(rule: TypeRule) -> None:
    if not rule.matches:
        raise InvalidParameter("an endpoint type rule has at least one Match")
    if len(rule.matches) > MAX_MATCHES:
        raise InvalidParameter(f"an endpoint type rule has at most {MAX_MATCHES} matches")
    seen: set[str] = set()
    for prop, pattern in rule.matches:
        if prop not in PROPERTIES:
            raise InvalidParameter(f"unknown CIM property {prop}", supported=PROPERTIES)
        if prop in seen:
            raise InvalidParameter(f"an endpoint type rule matches {prop} once")
        seen.add(prop)
        check(Selector("Pattern", pattern))


def holds(rule: TypeRule, identity: Mapping[str, str]) -> bool:
    return all(prop in identity and matches(Selector("Pattern", pattern), identity[prop])
               for prop, pattern in rule.matches)


def choose(rules: Iterable[TypeRule], identity: Sequence[NameValue]) -> TypeRule | None:
    """The rule that gives a registering endpoint its type (None: no rule holds)."""
    values = {p.name: p.value for p in identity}
    if not values:
        return None
    ordered = sorted(rules, key=lambda r: (r.priority, -len(r.matches), r.created_at,
                                           r.rule_id))
    return next((r for r in ordered if holds(r, values)), None)
