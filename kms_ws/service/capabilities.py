"""§6.3 NegotiateCapabilities and §6.4 GetServerCapabilities."""

from __future__ import annotations

from ..domain.capabilities import SERVER_CAPABILITIES, negotiate
from .context import RequestContext
from .messages import CapabilitiesResult, GetServerCapabilitiesRequest, NegotiateCapabilitiesRequest


def negotiate_capabilities(_ctx: RequestContext,
                           req: NegotiateCapabilitiesRequest) -> CapabilitiesResult:
    return CapabilitiesResult(tuple(negotiate(list(req.capabilities))))


def get_server_capabilities(_ctx: RequestContext,
                            _req: GetServerCapabilitiesRequest) -> CapabilitiesResult:
    return CapabilitiesResult(SERVER_CAPABILITIES)
