"""A recording HTTPS relay on a loopback port in front of a real HTTPS server: every request
a client sends and every answer it gets pass through byte for byte and are kept in
plaintext, so a test can validate exactly what a foreign SOAP toolkit put on the wire.

The relay terminates the clients' TLS with a certificate of its own (issued by the test CA
the clients trust) and talks TLS to the server, verifying the server's certificate against
that CA. It keeps the client's Host header, so `GET /wsman?wsdl` through it returns the
server's own served WSDL naming the relay's address (https: the server saw TLS), and a
client generated from it sends its calls through the relay without being told anything
else."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
               "trailer", "upgrade", "expect", "content-length"}


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    request_headers: dict[str, str]
    request: bytes
    status: int
    response_headers: dict[str, str]
    response: bytes = field(repr=False)

    def request_header(self, name: str) -> str | None:
        return next((v for k, v in self.request_headers.items() if k.lower() == name.lower()),
                    None)


class Recorder:
    """Relays https://127.0.0.1:<port> to `upstream` (https://127.0.0.1:<port>/...) and
    records. `cert` (certificate and key PEM files) is what the relay shows its clients;
    `ca` (a PEM file) is what it verifies the server's certificate with."""

    def __init__(self, upstream: str, cert: tuple[Path, Path], ca: Path) -> None:
        parts = urlsplit(upstream)
        assert parts.scheme == "https" and parts.hostname == "127.0.0.1", upstream
        self._upstream = (parts.hostname, parts.port or 443)
        self._upstream_tls = ssl.create_default_context(cafile=str(ca))  # verifies, by name
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(*map(str, cert))
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the toolkits expect

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                recorder._relay(self)

            def do_POST(self) -> None:  # noqa: N802
                recorder._relay(self)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        class Server(ThreadingHTTPServer):
            def finish_request(self, request: socket.socket, client_address: object) -> None:
                # the TLS handshake in the connection's own thread, not the accepting one
                request.settimeout(60)
                try:
                    conn = tls.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError):
                    return  # a client that does not trust the relay: nothing to record
                with conn:
                    super().finish_request(conn, client_address)

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="interop-recorder")

    def url(self, path: str = "/wsman") -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def mark(self) -> int:
        """A position in the record; `since(mark)` gives what came after it."""
        with self._lock:
            return len(self._exchanges)

    def since(self, mark: int) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges[mark:])

    def _relay(self, handler: BaseHTTPRequestHandler) -> None:
        body = _read_body(handler)
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream = http.client.HTTPSConnection(*self._upstream, timeout=60,
                                               context=self._upstream_tls)
        try:
            upstream.request(handler.command, handler.path, body=body or None,
                             headers={**headers, "Content-Length": str(len(body))}
                             if handler.command == "POST" else headers)
            answer = upstream.getresponse()
            content = answer.read()
            answer_headers = {k: v for k, v in answer.getheaders()
                              if k.lower() not in _HOP_BY_HOP}
            status = answer.status
        except (OSError, http.client.HTTPException) as exc:  # e.g. a certificate not verified
            handler.send_error(502, f"the relay reached no verified server: {exc}")
            return  # relayed nothing: nothing to record
        finally:
            upstream.close()
        with self._lock:
            self._exchanges.append(Exchange(handler.command, handler.path, dict(headers), body,
                                            status, answer_headers, content))
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
