"""SOAP 1.2 over HTTP: a keep-alive load client and one-off request helpers."""

from __future__ import annotations

import base64
import http.client
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

    def render(self) -> bytes:
        """The body with a fresh MessageID."""
        return self.body.replace(MESSAGE_ID_PLACEHOLDER, f"uuid:{uuid.uuid4()}").encode()


class SoapClient:
    """One HTTP/1.1 connection, reused while the server keeps it open.

    http.client reconnects by itself when the server closes after a response
    (gunicorn's sync workers do), so both cases are measured as a client sees them.
    """

    def __init__(self, spec: SoapRequest) -> None:
        self._spec = spec
        self._headers = spec.headers()
        self._conn = http.client.HTTPConnection(spec.host, spec.port, timeout=HTTP_TIMEOUT_S)

    def request(self) -> str | None:
        try:
            self._conn.request("POST", self._spec.path, self._spec.render(), self._headers)
            response = self._conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._conn.close()
            return f"{type(exc).__name__}: {exc}"
        if response.status != 200:
            return f"HTTP {response.status}: {payload[:200]!r}"
        if self._spec.expect not in payload:
            return f"missing {self._spec.expect.decode()}: {payload[:200]!r}"
        return None

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
