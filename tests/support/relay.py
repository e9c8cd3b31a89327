"""A loopback HTTP(S) relay in front of a real server: each request a client sends is
forwarded to the server and the server's answer is handed to `exchanged` (which may keep
or rewrite it) before it goes back. The base of the recording relay of the interop tests
(support.recorder) and of the man in the middle of the signed-response tests
(support.tamper)."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
              "trailer", "upgrade", "expect", "content-length"}


class Relay:
    """Relays http(s)://127.0.0.1:<port> to `upstream` (a loopback URL). With `tls` (a
    server-side context), the relay speaks TLS to its clients; with `upstream_tls`, to
    the server (verifying it)."""

    def __init__(self, upstream: str, *, tls: ssl.SSLContext | None = None,
                 upstream_tls: ssl.SSLContext | None = None, name: str = "relay") -> None:
        parts = urlsplit(upstream)
        assert parts.hostname == "127.0.0.1", upstream
        assert (parts.scheme == "https") is (upstream_tls is not None), upstream
        self._upstream = (parts.hostname, parts.port or (443 if upstream_tls else 80))
        self._upstream_tls = upstream_tls
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the clients expect

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                relay._relay(self)

            def do_POST(self) -> None:  # noqa: N802
                relay._relay(self)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        class Server(ThreadingHTTPServer):
            def finish_request(self, request: socket.socket, client_address: object) -> None:
                if tls is None:
                    super().finish_request(request, client_address)
                    return
                # the TLS handshake in the connection's own thread, not the accepting one
                request.settimeout(60)
                try:
                    conn = tls.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError):
                    return  # a client that does not trust the relay: nothing to relay
                with conn:
                    super().finish_request(conn, client_address)

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name=name)

    def __enter__(self) -> Relay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def exchanged(self, method: str, path: str, headers: dict[str, str], body: bytes,
                  status: int, answer_headers: dict[str, str], content: bytes) -> bytes:
        """One request and its answer, relayed: what goes back to the client."""
        return content

    def _relay(self, handler: BaseHTTPRequestHandler) -> None:
        body = _read_body(handler)
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = (http.client.HTTPSConnection(*self._upstream, timeout=60,
                                                context=self._upstream_tls)
                    if self._upstream_tls else
                    http.client.HTTPConnection(*self._upstream, timeout=60))
        try:
            upstream.request(handler.command, handler.path, body=body or None,
                             headers={**headers, "Content-Length": str(len(body))}
                             if handler.command == "POST" else headers)
            answer = upstream.getresponse()
            content = answer.read()
            answer_headers = {k: v for k, v in answer.getheaders()
                              if k.lower() not in HOP_BY_HOP}
            status = answer.status
        except (OSError, http.client.HTTPException) as exc:  # e.g. a certificate not verified
            handler.send_error(502, f"the relay reached no verified server: {exc}")
            return  # relayed nothing
        finally:
            upstream.close()
        content = self.exchanged(handler.command, handler.path, headers, body, status,
                                 answer_headers, content)
        handler.send_response(status)
        for name, value in answer_headers.items():
            if name.lower() not in ("server", "date"):
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""
