"""§5.6 caching policy objects: {CachingType, TCacheInterval[, Capability]} rules."""

from __future__ import annotations

from ...domain import caching
from ..context import RequestContext
from .decoders import caching_rules
from .messages import Document
from .policy import PolicyKind


class CachingPolicyKind(PolicyKind):
    element = "CachingPolicy"
    targets = frozenset({"Key", "KeyTemplate", "KeyGroup"})

    def validate(self, ctx: RequestContext, body: Document) -> None:
        caching.check_rules(caching_rules(body))
