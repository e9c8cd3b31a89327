"""A man in the middle on a plain HTTP connection: a loopback relay in front of a real
server that, while `active`, rewrites the body of every answer to a POST (after the
server signed it). A client talks to `relay.url` as to the server, over whatever HTTP
stack it uses (requests for zeep, http.client for the fast path)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from .relay import Relay

Rewrite = Callable[[bytes], bytes]


class TamperingRelay(Relay):
    def __init__(self, upstream: str, rewrite: Rewrite) -> None:
        super().__init__(upstream, name="tampering-relay")
        self.rewrite = rewrite
        self.active = False
        self.rewritten = 0  # answers rewritten so far
        self.url = f"http://127.0.0.1:{self.port}{urlsplit(upstream).path}"

    def __enter__(self) -> TamperingRelay:
        super().__enter__()
        return self

    def exchanged(self, method: str, path: str, headers: dict[str, str], body: bytes,
                  status: int, answer_headers: dict[str, str], content: bytes) -> bytes:
        if self.active and method == "POST":
            self.rewritten += 1
            return self.rewrite(content)
        return content
