"""§5.6 caching policy: CACHING_TYPE / T_CACHE_INTERVAL tuples per endpoint capability.

The rule for an endpoint is the first rule (in policy order) naming a capability the
endpoint has; else the first rule naming none; else the key's own T_CACHED. NoCache
delivers T_CACHED = 0. The CACHING_TYPE delivered is the rule's; without one, NoCache
for a T_CACHED of 0 and Memory otherwise (a rule with interval 0 is NoCache).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import InvalidParameter

CACHING_TYPES = ("NoCache", "Memory", "Persistent")


@dataclass(frozen=True)
class CachingRule:
    caching_type: str
    interval: int  # seconds
    capability: str | None = None


def check_rules(rules: Sequence[CachingRule]) -> None:
    if not rules:
        raise InvalidParameter("a caching policy has at least one rule")
    seen: set[str | None] = set()
    for r in rules:
        if r.caching_type not in CACHING_TYPES:
            raise InvalidParameter(f"unknown CachingType {r.caching_type}",
                                   supported=CACHING_TYPES)
        if r.capability in seen:
            raise InvalidParameter("two caching rules for the same capability "
                                   f"{r.capability or '(default)'}")
        seen.add(r.capability)


@dataclass(frozen=True)
class Caching:
    """What a receiver may do with a key: CACHING_TYPE and T_CACHED (seconds)."""

    caching_type: str
    t_cached: int
    by_policy: bool  # a policy's rule decided it (else the key's own T_CACHED)


def own(t_cached: int) -> Caching:
    """No caching policy decides: the key's own T_CACHED, in memory only (Persistent is
    never implied: only an administrator's caching policy grants it)."""
    return Caching("NoCache" if t_cached <= 0 else "Memory", max(int(t_cached), 0), False)


def resolve(rules: Sequence[CachingRule], capabilities: Iterable[str], fallback: int) -> Caching:
    caps = set(capabilities)
    chosen = next((r for r in rules if r.capability is not None and r.capability in caps),
                  None) or next((r for r in rules if r.capability is None), None)
    if chosen is None:
        return own(fallback)
    if chosen.caching_type == "NoCache" or chosen.interval <= 0:
        return Caching("NoCache", 0, True)
    return Caching(chosen.caching_type, chosen.interval, True)
