"""§4.10 client groups and §4.11 key groups: static members or dynamic rules.

A dynamic group is a list of {PATTERN, ATTRIBUTE} rules, evaluated when a request is
decided (never cached): a subject is a member when EVERY rule matches, a rule matching
when some value of the named attribute is selected by the rule's selection rule
(domain.selection: a regular expression matching in full — `Pattern`, the original
form — or an exact Value, Prefix, Glob, Range or Cidr).
For clients the attributes are the client's attribute associations plus `name`; for
keys they are the key's data-set bindings (NAME -> VALUE).

When a key is in several key groups that carry a policy of one kind, the most specific
group decides (`rank`): a static group the key was put in, then dynamic groups by their
rules as key-assignment policies are ranked (more rules; then more specific rules:
exact > range/CIDR by fewer values > prefix/glob by more literal characters > regular
expression); still equal, the oldest group (created first, then the lower id).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from . import selection
from .errors import InvalidParameter


@dataclass(frozen=True)
class PatternRule:
    rule: selection.Selector
    attribute: str


def pattern(regex: str, attribute: str) -> PatternRule:
    return PatternRule(selection.Selector("Pattern", regex), attribute)


@dataclass(frozen=True)
class Group:
    group_id: str
    dynamic: bool
    members: frozenset[str] = frozenset()
    rules: tuple[PatternRule, ...] = ()
    created_at: datetime | None = None


def check_group(group: Group) -> None:
    if group.dynamic:
        if not group.rules:
            raise InvalidParameter("a dynamic group needs at least one {Pattern, Attribute} rule")
        if group.members:
            raise InvalidParameter("a dynamic group has rules, not a member list")
        for r in group.rules:
            try:
                selection.check(r.rule)
            except InvalidParameter as exc:
                raise InvalidParameter(f"rule on {r.attribute}: {exc.reason}",
                                       supported=exc.supported) from None
    elif group.rules:
        raise InvalidParameter("a static group has a member list, not rules")


def is_member(group: Group, subject_id: str,
              attributes: Mapping[str, Sequence[str]]) -> bool:
    if not group.dynamic:
        return subject_id in group.members
    return all(any(selection.matches(r.rule, v) for v in attributes.get(r.attribute, ()))
               for r in group.rules)


def rank(group: Group, static_member: bool) -> tuple[object, ...]:
    """Sort key, most specific first, for a group the subject belongs to
    (`static_member`: it was put in the group, not matched by rules)."""
    specific = sorted((selection.specificity(r.rule) for r in group.rules), reverse=True)
    return (0 if static_member else 1, -len(group.rules), [(-a, -b) for a, b in specific],
            group.created_at.timestamp() if group.created_at else float("inf"),
            group.group_id)


def attribute_map(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        out.setdefault(name, []).append(value)
    return out
