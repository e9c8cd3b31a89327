"""A man in the middle on a plain HTTP connection: a loopback relay in front of a real
server that, while `active`, rewrites the body of every answer to a POST (after the
server signed it). A client talks to `relay.url` as to the server, over whatever HTTP
stack it uses (requests for zeep, http.client for the fast path)."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

Rewrite = Callable[[bytes], bytes]
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class TamperingRelay:
    def __init__(self, upstream: str, rewrite: Rewrite) -> None:
        parts = urlsplit(upstream)
        assert parts.scheme == "http" and parts.hostname == "127.0.0.1", upstream
        self._upstream = (parts.hostname, parts.port or 80)
        self.rewrite = rewrite
        self.active = False
        self.rewritten = 0  # answers rewritten so far
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as both client paths use it

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                relay._relay(self)

            def do_POST(self) -> None:  # noqa: N802
                relay._relay(self)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{parts.path}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="tampering-relay")

    def __enter__(self) -> TamperingRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _relay(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream = http.client.HTTPConnection(*self._upstream, timeout=60)
        try:
            upstream.request(handler.command, handler.path, body=body or None,
                             headers={**headers, "Content-Length": str(len(body))}
                             if handler.command == "POST" else headers)
            answer = upstream.getresponse()
            content = answer.read()
        finally:
            upstream.close()
        if self.active and handler.command == "POST":
            content = self.rewrite(content)
            self.rewritten += 1
        handler.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in _HOP_BY_HOP | {"server", "date"}:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)
