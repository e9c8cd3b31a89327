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

import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .relay import Relay


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


class Recorder(Relay):
    """Relays https://127.0.0.1:<port> to `upstream` (https://127.0.0.1:<port>/...) and
    records. `cert` (certificate and key PEM files) is what the relay shows its clients;
    `ca` (a PEM file) is what it verifies the server's certificate with."""

    def __init__(self, upstream: str, cert: tuple[Path, Path], ca: Path) -> None:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(*map(str, cert))
        super().__init__(upstream, tls=tls, name="interop-recorder",
                         upstream_tls=ssl.create_default_context(cafile=str(ca)))
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []

    def url(self, path: str = "/wsman") -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> Recorder:
        super().__enter__()
        return self

    def mark(self) -> int:
        """A position in the record; `since(mark)` gives what came after it."""
        with self._lock:
            return len(self._exchanges)

    def since(self, mark: int) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges[mark:])

    def exchanged(self, method: str, path: str, headers: dict[str, str], body: bytes,
                  status: int, answer_headers: dict[str, str], content: bytes) -> bytes:
        with self._lock:
            self._exchanges.append(Exchange(method, path, dict(headers), body, status,
                                            answer_headers, content))
        return content
