"""§4.10 client groups and §4.11 key groups: static members or dynamic rules.

A dynamic group is a list of {PATTERN, ATTRIBUTE} rules, evaluated when a request is
decided (never cached): a subject is a member when EVERY rule matches, a rule matching
when some value of the named attribute matches the regular expression in full.
For clients the attributes are the client's attribute associations plus `name`; for
keys they are the key's data-set bindings (NAME -> VALUE).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from .errors import InvalidParameter

MAX_PATTERN = 512


@dataclass(frozen=True)
class PatternRule:
    pattern: str
    attribute: str


@dataclass(frozen=True)
class Group:
    group_id: str
    dynamic: bool
    members: frozenset[str] = frozenset()
    rules: tuple[PatternRule, ...] = ()


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    if len(pattern) > MAX_PATTERN:
        raise InvalidParameter(f"a group pattern has at most {MAX_PATTERN} characters")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidParameter(f"invalid regular expression {pattern!r}: {exc}") from None


def check_group(group: Group) -> None:
    if group.dynamic:
        if not group.rules:
            raise InvalidParameter("a dynamic group needs at least one {Pattern, Attribute} rule")
        if group.members:
            raise InvalidParameter("a dynamic group has rules, not a member list")
        for rule in group.rules:
            compile_pattern(rule.pattern)
    elif group.rules:
        raise InvalidParameter("a static group has a member list, not rules")


def is_member(group: Group, subject_id: str,
              attributes: Mapping[str, Sequence[str]]) -> bool:
    if not group.dynamic:
        return subject_id in group.members
    return all(any(compile_pattern(r.pattern).fullmatch(v)
                   for v in attributes.get(r.attribute, ()))
               for r in group.rules)


def attribute_map(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        out.setdefault(name, []).append(value)
    return out
