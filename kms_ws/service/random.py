"""§6.9 GetRandomBytes."""

from __future__ import annotations

from ..crypto.random import random_bytes
from ..domain.errors import InvalidParameter
from .context import RequestContext
from .messages import GetRandomBytesRequest, GetRandomBytesResult


def get_random_bytes(ctx: RequestContext, req: GetRandomBytesRequest) -> GetRandomBytesResult:
    limit = ctx.settings.max_random_bytes
    if not 1 <= req.number_of_bytes <= limit:
        raise InvalidParameter(f"NumberOfBytes must be between 1 and {limit}")
    return GetRandomBytesResult(random_bytes(req.number_of_bytes))
