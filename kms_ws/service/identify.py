"""DSP0226 §11 Identify: what this service is (what it speaks: kms_ws.wsman.identify)."""

from __future__ import annotations

from .. import __version__
from .context import RequestContext
from .ws_messages import IdentifyRequest, IdentifyResult

PRODUCT_VENDOR = "kms-ws project"


def identify(ctx: RequestContext | None, req: IdentifyRequest) -> IdentifyResult:
    """ctx is None when the server answers Identify without credentials (configured)."""
    return IdentifyResult(PRODUCT_VENDOR, __version__)
