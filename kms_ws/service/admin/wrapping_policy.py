"""§5.3 wrapping policy objects. Resolution (which applies) is
kms_ws.domain.wrapping_policy; the key-wrapping code applies it (domain.wrapping.decide,
which also refuses a layer its WRAPPING_TYPE does not allow)."""

from __future__ import annotations

from ...domain.wrapping import check_policy_type
from ..context import RequestContext
from .messages import Document
from .policy import PolicyKind


class WrappingPolicyKind(PolicyKind):
    element = "WrappingPolicy"
    targets = frozenset({"Key", "KeyGroup", "KeyTemplate", "Pep", "Client", "ClientGroup",
                         "EndpointType"})

    def validate(self, ctx: RequestContext, body: Document) -> None:
        check_policy_type(body.get("WrappingType", ""), body.get("WrappingMode", ""))
