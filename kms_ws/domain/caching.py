"""§5.6 caching policy: CACHING_TYPE / T_CACHE_INTERVAL tuples per endpoint capability.

The rule for an endpoint is the first rule (in policy order) naming a capability the
endpoint has; else the first rule naming none; else the key's own T_CACHED. NoCache
delivers T_CACHED = 0.
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


def resolve_t_cached(rules: Sequence[CachingRule], capabilities: Iterable[str],
                     fallback: int) -> int:
    caps = set(capabilities)
    chosen = next((r for r in rules if r.capability is not None and r.capability in caps),
                  None) or next((r for r in rules if r.capability is None), None)
    if chosen is None:
        return fallback
    return 0 if chosen.caching_type == "NoCache" else chosen.interval
