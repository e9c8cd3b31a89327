"""KmsClient's fast path over HTTP: one persistent http.client connection (keep-alive),
with the TLS settings the client's requests session has (CA bundle or directory,
`verify=False`, client certificate) and the same exceptions requests raises.

requests cost ~0.7 ms of client CPU per POST (hooks, environment merging, adapters),
http.client on a kept-alive connection ~0.2 ms (bench/README.md, "KmsClient benchmark").
A connection the server closed while idle is noticed before the request is written
(as urllib3 does) and opened again; a request is never sent twice: a POST that
failed on the way is not retried, for a CreateKey may have been done.
"""

from __future__ import annotations

import http.client
import os
import select
import socket
import ssl
from typing import cast
from urllib.parse import urlsplit

import requests
from requests.utils import DEFAULT_CA_BUNDLE_PATH


class HttpConnection:
    def __init__(self, url: str, session: requests.Session, timeout: float,
                 cert: str | tuple[str, str] | None) -> None:
        parts = urlsplit(url)
        self.path = parts.path or "/"
        if parts.query:
            self.path += "?" + parts.query
        host, port = parts.hostname or "", parts.port
        if parts.scheme == "https":
            verify = session.merge_environment_settings(url, {}, None, None, None)["verify"]
            context = _tls_context(True if verify is None else verify, cert)
            self._conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=timeout, context=context)
        else:
            self._conn = http.client.HTTPConnection(host, port, timeout=timeout)

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        """(status, Content-Type, body) of the answer; requests' ConnectionError or
        Timeout when the exchange fails (the connection is then closed)."""
        conn = self._conn
        if conn.sock is not None and _dropped(conn.sock):
            conn.close()
        try:
            if conn.sock is None:
                conn.connect()
                # headers and body go in two writes: neither waits for the other's ACK
                cast(socket.socket, conn.sock).setsockopt(socket.IPPROTO_TCP,
                                                          socket.TCP_NODELAY, 1)
            conn.request("POST", self.path, body, headers)
            r = conn.getresponse()
            content = r.read()
        except TimeoutError as exc:  # before OSError: a timeout is one
            conn.close()
            raise requests.Timeout(exc) from None
        except ssl.SSLError as exc:  # so is a TLS failure
            conn.close()
            raise requests.exceptions.SSLError(exc) from None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise requests.ConnectionError(exc) from None
        return r.status, r.getheader("Content-Type", ""), content

    def close(self) -> None:
        self._conn.close()


def _dropped(sock: socket.socket) -> bool:
    """An idle kept-alive connection with something to read: the server closed it (or
    sent what no request asked for); it is not used again."""
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _tls_context(verify: bool | str, cert: str | tuple[str, str] | None) -> ssl.SSLContext:
    """TLS as requests does it: verify=True checks against its CA bundle only (certifi,
    or REQUESTS_CA_BUNDLE), a path names a CA file or directory, False checks nothing."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # hostname checked, TLS >= 1.2
    if verify is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        where = DEFAULT_CA_BUNDLE_PATH if verify is True else verify
        if os.path.isdir(where):
            context.load_verify_locations(capath=where)
        else:
            context.load_verify_locations(cafile=where)
    if cert is not None:
        if isinstance(cert, str):
            context.load_cert_chain(cert)
        else:
            context.load_cert_chain(*cert)
    return context
