"""§4.5 realms: realm URIs, rights, and the access decision.

A subject (client, PEP, administrator) holds *grants*: per realm, a set of rights. An
object (key, policy, template, ...) is *in* one or more realms. The subject's rights on
the object are the union of the rights it holds in the realms the two share; with no
shared realm (or no right there) the object does not exist for the subject.

Rights are a set, not a ladder ("Realms must allow the following distinctions: create,
edit, delete, read, reference"): each access needs its own right. Reference lets a
subject use an object without viewing it (a key delivered wrapped for a PEP it serves, a
policy or group named in an association); Read shows it (metadata, and a key's value to
the caller itself); Edit changes it; Delete removes it; Create puts new objects into the
realm. One implication is kept: Read implies Reference (what one may view one may use).
Schema 19 turned the ladder of earlier schemas (Create implied all) into explicit sets.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence

from .errors import InvalidParameter, PermissionDenied

_LABEL = r"[A-Za-z]([A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
REALM_URI = re.compile(rf"realm://{_LABEL}(\.{_LABEL})*/[A-Za-z0-9._~\-]{{1,128}}")


class Right(enum.IntEnum):
    REFERENCE = 1
    READ = 2
    EDIT = 3
    DELETE = 4
    CREATE = 5

    @property
    def label(self) -> str:
        return self.name.capitalize()

    @classmethod
    def parse(cls, text: str) -> Right:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise InvalidParameter(f"unknown realm right {text!r}",
                                   supported=tuple(r.label for r in cls)) from None


ALL_RIGHTS: frozenset[Right] = frozenset(Right)

# The one implication between rights: what one may view one may use.
_IMPLIED: Mapping[Right, frozenset[Right]] = {Right.READ: frozenset({Right.REFERENCE})}


def implied(rights: Iterable[Right]) -> frozenset[Right]:
    """`rights` with the rights they imply."""
    out = set(rights)
    for r in list(out):
        out |= _IMPLIED.get(r, frozenset())
    return frozenset(out)


def ladder_closure(rights: Iterable[Right]) -> frozenset[Right]:
    """What a stored grant meant before schema 19, when rights were a ladder (Reference <
    Read < Edit < Delete < Create, each implying those below): its top right and every
    right below it. Used by that migration only."""
    top = max(rights, default=None)
    return frozenset(r for r in Right if top is not None and r <= top)

Grants = Mapping[str, frozenset[Right]]


def check_realm_uri(uri: str) -> str:
    """realm://domain/realm-name with an RFC 1034 domain; the domain is case-insensitive."""
    if len(uri) > 512 or not REALM_URI.fullmatch(uri):
        raise InvalidParameter(f"{uri!r} is not a realm URI (realm://domain/realm-name)")
    domain, _, name = uri[len("realm://"):].partition("/")
    return f"realm://{domain.lower()}/{name}"


def realm_object_id(uri: str) -> str:
    """The SO_GUID of a Realm object: derived from its URI (stable on every node)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, uri))


def rights_on(grants: Grants, object_realms: Iterable[str]) -> frozenset[Right]:
    """The rights `grants` give on an object in `object_realms`: the union over the
    realms the two share (§4.5 "the most privileged right from any associated realm"),
    with the implied ones. Empty: the object does not exist for the subject."""
    out: set[Right] = set()
    for realm in object_realms:
        out |= grants.get(realm, frozenset())
    return implied(out)


def allows(grants: Grants, object_realms: Iterable[str], needed: Right) -> bool:
    return needed in rights_on(grants, object_realms)


def realms_with(grants: Grants, needed: Right) -> tuple[str, ...]:
    """The realms in which `grants` give `needed` (for queries that filter)."""
    return tuple(sorted(r for r in grants if holds(grants, r, needed)))


def usable_realms(grants: Grants, right: Right, pep_grants: Grants | None = None
                  ) -> tuple[str, ...]:
    """The realms in which `grants` give `right`; for keys that end up at a PEP
    (`pep_grants`), only those in which the PEP holds Reference as well."""
    realms = set(realms_with(grants, right))
    if pep_grants is not None:
        realms &= set(realms_with(pep_grants, Right.REFERENCE))
    return tuple(sorted(realms))


def holds(grants: Grants, realm: str, right: Right) -> bool:
    """Whether `grants` give `right` in `realm` itself (held, or implied by one held)."""
    return right in implied(grants.get(realm, ()))


def missing_rights(grants: Grants, realm: str, wanted: Iterable[Right]) -> list[Right]:
    """The rights of `wanted` that `grants` do not give in `realm` (one may grant only
    rights one holds)."""
    return sorted(r for r in set(wanted) if not holds(grants, realm, r))


def new_object_realms(grants: Grants, named: Sequence[str], default_realm: str, what: str,
                      within: Sequence[str] | None = None,
                      bound: str = "the template's realms") -> tuple[str, ...]:
    """The realms a new object (a key, a policy, a client...) goes into. Named realms:
    each needs the Create right, and all lie `within` the bound when there is one (the
    realms of the template a key is made from). None named: ONE realm, never every realm
    where the caller may create — the server's default realm when the caller may create
    there (and it lies within the bound), else the caller's only such realm; with
    several and no default the request must name them. `bound` names `within` in faults."""
    creatable = {r for r in grants if holds(grants, r, Right.CREATE)}
    if named:
        wanted = sorted(set(named))
        lacking = [r for r in wanted if r not in creatable]
        if lacking:  # the same answer whether the realm exists or not
            raise PermissionDenied(f"Create right needed in {', '.join(lacking)}")
        outside = [r for r in wanted if within is not None and r not in within]
        if outside:
            raise InvalidParameter(f"{bound} ({', '.join(sorted(within or ()))}) do not "
                                   f"include {', '.join(outside)}")
        return tuple(wanted)
    candidates = sorted(creatable & set(within) if within is not None else creatable)
    if default_realm in candidates:
        return (default_realm,)
    if len(candidates) == 1:
        return (candidates[0],)
    if not candidates:
        raise PermissionDenied("no Create right in " + (
            f"{bound} ({', '.join(sorted(within))})" if within is not None else "any realm"))
    raise InvalidParameter(f"name the realm(s) for the new {what} (RealmAssociations): "
                           f"the caller may create in {', '.join(candidates)}")


def format_rights(rights: Iterable[Right]) -> str:
    return ",".join(r.label for r in sorted(rights, reverse=True))


def parse_rights(text: str | Iterable[str]) -> frozenset[Right]:
    items = text.split(",") if isinstance(text, str) else list(text)
    return frozenset(Right.parse(t) for t in items if t.strip())
