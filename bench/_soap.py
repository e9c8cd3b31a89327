"""SOAP 1.2 over HTTP: a keep-alive load client and one-off request helpers."""

from __future__ import annotations

import base64
import http.client
import socket
import uuid
from dataclasses import dataclass

SOAP12_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
MESSAGE_ID_PLACEHOLDER = "@@MESSAGE-ID@@"
HTTP_TIMEOUT_S = 30.0


def basic_auth(user: str, password: str) -> str:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


@dataclass(frozen=True)
class SoapRequest:
    """A prebuilt POST: `body` may contain MESSAGE_ID_PLACEHOLDER once."""

    host: str
    port: int
    path: str
    body: str
    expect: bytes
    authorization: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": SOAP12_CONTENT_TYPE}
        if self.authorization:
            headers["Authorization"] = self.authorization
        return headers

    def render(self, message_id: str | None = None) -> bytes:
        """The body with this MessageID, or a fresh one."""
        return self.body.replace(MESSAGE_ID_PLACEHOLDER,
                                 message_id or f"uuid:{uuid.uuid4()}").encode()


class HttpError(Exception):
    """The server's answer could not be read as HTTP/1.1."""


class KeepAliveConnection:
    """A minimal HTTP/1.1 POST client on one socket, reused while the server keeps it open.

    The load generator's own CPU is spent on the same cores as the server's, so it sends
    each request in one write and reads the answer by its Content-Length, without
    http.client's per-request header objects and email parser (which cost about as much
    as the server's HTTP layer). It reconnects when the server closes after an answer."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self._address = (host, port)
        self._head = "".join(f"{k}: {v}\r\n" for k, v in
                             {"Host": f"{host}:{port}", **headers}.items())
        self._sock: socket.socket | None = None
        self._buf = b""

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self._sock is None:
            self._sock = socket.create_connection(self._address, timeout=HTTP_TIMEOUT_S)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._buf = b""
        self._sock.sendall(f"POST {path} HTTP/1.1\r\n{self._head}Content-Length: "
                           f"{len(body)}\r\n\r\n".encode("latin-1") + body)
        status, length, close = self._read_head()
        payload = self._read_exactly(length)
        if close:
            self.close()
        return status, payload

    def _read_head(self) -> tuple[int, int, bool]:
        while b"\r\n\r\n" not in self._buf:
            self._fill()
        head, self._buf = self._buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise HttpError(f"bad status line {lines[0][:80]!r}")
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if "content-length" not in fields or not fields["content-length"].isdigit():
            raise HttpError("the answer has no Content-Length")
        close = fields.get("connection", "").lower() == "close" or parts[0] == "HTTP/1.0"
        return int(parts[1]), int(fields["content-length"]), close

    def _read_exactly(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._fill()
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def _fill(self) -> None:
        assert self._sock is not None
        chunk = self._sock.recv(65536)
        if not chunk:
            raise HttpError("the server closed the connection")
        self._buf += chunk

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def exchange(self, path: str, body: bytes) -> bytes | str:
        """The 200 answer's body, or an error text (the connection is then closed)."""
        try:
            status, payload = self.post(path, body)
        except (OSError, HttpError) as exc:
            self.close()
            return f"{type(exc).__name__}: {exc}"
        return payload if status == 200 else f"HTTP {status}: {payload[:200]!r}"


def expected(spec: SoapRequest, payload: bytes) -> str | None:
    """None when the answer holds what the request expects, else an error text."""
    if spec.expect not in payload:
        return f"missing {spec.expect.decode()}: {payload[:200]!r}"
    return None


class SoapClient:
    """One keep-alive connection posting the prebuilt request with a fresh MessageID."""

    def __init__(self, spec: SoapRequest) -> None:
        self._spec = spec
        self._conn = KeepAliveConnection(spec.host, spec.port, spec.headers())

    def request(self) -> str | None:
        answer = self._conn.exchange(self._spec.path, self._spec.render())
        return answer if isinstance(answer, str) else expected(self._spec, answer)

    def close(self) -> None:
        self._conn.close()


@dataclass(frozen=True)
class SoapClientFactory:
    """Picklable factory handed to the load worker processes."""

    spec: SoapRequest

    def __call__(self) -> SoapClient:
        return SoapClient(self.spec)


def post_once(spec: SoapRequest) -> tuple[int, bytes]:
    """One POST on a fresh connection; returns (status, body)."""
    conn = http.client.HTTPConnection(spec.host, spec.port, timeout=HTTP_TIMEOUT_S)
    try:
        conn.request("POST", spec.path, spec.render(), spec.headers())
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def get_status(host: str, port: int, path: str) -> int | None:
    """Status of a GET, or None when nothing answers yet."""
    conn = http.client.HTTPConnection(host, port, timeout=2.0)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
