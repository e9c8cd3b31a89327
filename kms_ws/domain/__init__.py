"""The P1619.3 domain: objects (§4), policies (§5), life cycle, errors. Pure Python."""
