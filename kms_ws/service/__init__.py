"""One handler per §6 operation: handler(ctx, request) -> result. No transport code."""
