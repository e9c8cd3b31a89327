"""DNS rebinding: a NotifyTo / EndTo host name is resolved once, every address checked,
and the call goes to a checked address with the name in the Host header — never to what
the name resolves to later. The resolver is replaced; the HTTP server is real (loopback)."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kms_ws.domain.errors import EndpointUnreachable, NotifyToRefused
from kms_ws.service import notify_to
from kms_ws.wsman.pinned import PinnedPoster

from ..support.pki import server_cert
from ..support.server import free_port

_REAL_GETADDRINFO = socket.getaddrinfo


class Resolver:
    """Stands in for socket.getaddrinfo, process-wide (so a connection that resolved the
    name again would be seen): names from a table that a test may change; IP literals
    as the real resolver answers them."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers, self.calls = answers, 0

    def __call__(self, host: str, port: Any, *args: Any, **kw: Any) -> list[tuple]:  # type: ignore[type-arg]
        if notify_to._address(host) is not None:
            return _REAL_GETADDRINFO(host, port, *args, **kw)
        self.calls += 1  # a name lookup
        if host not in self.answers:
            raise socket.gaierror("unknown host")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, 0)) for a in self.answers[host]]


@pytest.fixture()
def resolver(monkeypatch: pytest.MonkeyPatch) -> Resolver:
    r = Resolver({})
    monkeypatch.setattr(socket, "getaddrinfo", r)
    return r


Answer = Callable[[BaseHTTPRequestHandler, bytes], tuple[int, dict[str, str], bytes]]


@contextmanager
def _serving(answer: Answer, tls: ssl.SSLContext | None = None) -> Iterator[int]:
    """A real HTTP(S) server on 127.0.0.1 (its port) that reads each POST's body and
    answers what `answer` returns for it: status, headers, body."""
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            status, headers, payload = answer(
                self, self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            self.send_response(status)
            for name, value in {"Content-Length": str(len(payload)), **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def endpoint() -> Iterator[tuple[int, list[tuple[str, str, bytes]]]]:
    """A real HTTP server on 127.0.0.1 recording (Host header, path, body)."""
    seen: list[tuple[str, str, bytes]] = []

    def record(handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict, bytes]:  # type: ignore[type-arg]
        seen.append((handler.headers.get("Host") or "", handler.path, body))
        return 200, {}, b"ok"
    with _serving(record) as port:
        yield port, seen


def test_the_checked_address_is_used_not_a_later_answer(resolver: Resolver, endpoint) -> None:  # type: ignore[no-untyped-def]
    port, seen = endpoint
    resolver.answers["hooks.example"] = ["127.0.0.1"]
    target = notify_to.check(f"http://hooks.example:{port}/kms-client?x=1", "127.0.0.1", ())
    assert [str(a) for a in target.addresses] == ["127.0.0.1"] and resolver.calls == 1
    resolver.answers["hooks.example"] = ["169.254.169.254"]  # rebinding after the check
    answer = PinnedPoster(5).post(target, b"<x/>", {"Content-Type": "text/xml"})
    assert answer.status == 200 and answer.body == b"ok"
    assert seen == [(f"hooks.example:{port}", "/kms-client?x=1", b"<x/>")]
    assert resolver.calls == 1, "the name was resolved again for the connection"
    with pytest.raises(NotifyToRefused):  # the next check sees the new answer
        notify_to.check(f"http://hooks.example:{port}/kms-client", "127.0.0.1", ())


def test_every_address_of_a_name_must_qualify(resolver: Resolver) -> None:
    resolver.answers["mixed.example"] = ["127.0.0.1", "10.1.2.3"]
    with pytest.raises(NotifyToRefused, match="mixed.example"):
        notify_to.check("http://mixed.example/x", "127.0.0.1", ())
    target = notify_to.check("http://mixed.example/x", "127.0.0.1", ("10.1.0.0/16",))
    assert [str(a) for a in target.addresses] == ["127.0.0.1", "10.1.2.3"]


def test_the_next_checked_address_is_tried_when_one_does_not_listen(
        resolver: Resolver, endpoint) -> None:  # type: ignore[no-untyped-def]
    port, seen = endpoint
    resolver.answers["localhost.example"] = ["::1", "127.0.0.1"]  # listening on v4 only
    target = notify_to.check(f"http://localhost.example:{port}/a", "127.0.0.1", ())
    assert PinnedPoster(5).post(target, b"1", {}).status == 200
    assert [h for h, _, _ in seen] == [f"localhost.example:{port}"]


def test_nothing_listening_is_unreachable_and_redirects_are_not_followed(
        resolver: Resolver) -> None:
    resolver.answers["quiet.example"] = ["127.0.0.1"]
    target = notify_to.check(f"http://quiet.example:{free_port()}/a", "127.0.0.1", ())
    with pytest.raises(EndpointUnreachable):
        PinnedPoster(2).post(target, b"1", {})


def test_a_redirect_is_an_answer_not_a_second_request(resolver: Resolver) -> None:
    redirect = (307, {"Location": "http://169.254.169.254/latest/"}, b"")
    with _serving(lambda handler, body: redirect) as port:
        resolver.answers["redir.example"] = ["127.0.0.1"]
        target = notify_to.check(f"http://redir.example:{port}/", "127.0.0.1", ())
        assert PinnedPoster(5).post(target, b"1", {}).status == 307


def test_an_oversized_answer_is_refused(resolver: Resolver) -> None:
    with _serving(lambda handler, body: (200, {}, b"x" * 4096)) as port:
        resolver.answers["big.example"] = ["127.0.0.1"]
        target = notify_to.check(f"http://big.example:{port}/", "127.0.0.1", ())
        with pytest.raises(EndpointUnreachable, match="more than 1024"):
            PinnedPoster(5, max_answer_bytes=1024).post(target, b"1", {})


def test_user_info_in_the_address_is_refused() -> None:
    with pytest.raises(NotifyToRefused, match="user name"):
        notify_to.check("http://u:p@127.0.0.1/x", "127.0.0.1", ())


def test_https_checks_the_certificate_against_the_name_not_the_address(
        resolver: Resolver, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The socket goes to the checked address; TLS sends the name (SNI) and the
    certificate must be for the name (here: 'localhost', issued by the configured CA)."""
    cert, key = server_cert(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    names: list[str | None] = []
    ctx.sni_callback = lambda sock, name, _: names.append(name)  # type: ignore[assignment]

    with _serving(lambda handler, body: (200, {}, b""), tls=ctx) as port:
        resolver.answers["localhost"] = ["127.0.0.1"]
        resolver.answers["elsewhere.example"] = ["127.0.0.1"]
        poster = PinnedPoster(5, ca_file=cert)
        good = notify_to.check(f"https://localhost:{port}/x", "127.0.0.1", ())
        assert poster.post(good, b"1", {}).status == 200
        assert names == ["localhost"]
        wrong = notify_to.check(f"https://elsewhere.example:{port}/x", "127.0.0.1", ())
        with pytest.raises(EndpointUnreachable):  # the certificate is not for that name
            poster.post(wrong, b"1", {})
        with pytest.raises(EndpointUnreachable):  # nor trusted without the CA
            PinnedPoster(5).post(good, b"1", {})
