"""DSP0226 §11 Identify: what this service is and speaks."""

from __future__ import annotations

from .. import __version__
from ..xmlns import WSMAN
from .context import RequestContext
from .ws_messages import IdentifyRequest, IdentifyResult

PRODUCT_VENDOR = "kms-ws project"
SECURITY_PROFILES = (
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/http/basic",
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/basic",
)


def identify(ctx: RequestContext | None, req: IdentifyRequest) -> IdentifyResult:
    """ctx is None when the server answers Identify without credentials (configured)."""
    return IdentifyResult(WSMAN, PRODUCT_VENDOR, __version__, SECURITY_PROFILES)
