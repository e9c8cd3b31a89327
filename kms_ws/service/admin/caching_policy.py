"""§5.6 caching policy objects: {CachingType, TCacheInterval[, Capability]} rules."""

from __future__ import annotations

from ...domain import caching
from ..context import RequestContext
from .messages import Document
from .policy import PolicyKind


def rules_of(body: Document) -> list[caching.CachingRule]:
    return [caching.CachingRule(r["CachingType"], int(r["TCacheInterval"]), r.get("Capability"))
            for r in body.get("Rule", [])]


class CachingPolicyKind(PolicyKind):
    element = "CachingPolicy"
    targets = frozenset({"Key", "KeyTemplate", "KeyGroup"})

    def validate(self, ctx: RequestContext, body: Document) -> None:
        caching.check_rules(rules_of(body))
