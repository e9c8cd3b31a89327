"""§5.2 retention policy: T_EXPIRATION and T_DISABLE (xsd:duration from key creation)
set T_EXPIRED and T_DISABLED on the keys it applies to; associated with a client or a
client group, they limit what that client can still get of any key (resolved at each
request, service.key_versions.narrow_for_client; the keys are not changed)."""

from __future__ import annotations

from ...domain.durations import check_duration
from ...domain.errors import InvalidParameter
from ..context import RequestContext
from .messages import Document
from .policy import PolicyKind


class RetentionPolicyKind(PolicyKind):
    element = "RetentionPolicy"
    targets = frozenset({"Key", "KeyTemplate", "KeyGroup", "Client", "ClientGroup"})

    def validate(self, ctx: RequestContext, body: Document) -> None:
        if not body.get("TExpiration") and not body.get("TDisable"):
            raise InvalidParameter("a retention policy sets TExpiration, TDisable or both")
        for name in ("TExpiration", "TDisable"):
            if body.get(name):
                check_duration(body[name])
