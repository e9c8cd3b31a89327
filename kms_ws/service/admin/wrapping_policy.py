"""§5.3 wrapping policy objects. Resolution (which applies) is
kms_ws.domain.wrapping_policy; the key-wrapping code applies it."""

from __future__ import annotations

from .policy import PolicyKind


class WrappingPolicyKind(PolicyKind):
    element = "WrappingPolicy"
    targets = frozenset({"Key", "KeyGroup", "KeyTemplate", "Pep", "Client", "EndpointType"})
