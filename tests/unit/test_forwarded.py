"""Forwarded headers: believed only from a trusted proxy, read from the right."""

from __future__ import annotations

import pytest

from kms_ws.config import Config
from kms_ws.security.forwarded import Origin, ProxyTrust

PROXIES = ProxyTrust(["10.0.0.0/24", "2001:db8::1"])


def origin(trust: ProxyTrust, peer: str, scheme: str = "http", **headers: str) -> Origin:
    environ = {"REMOTE_ADDR": peer, "wsgi.url_scheme": scheme}
    environ.update({"HTTP_" + k.upper(): v for k, v in headers.items()})
    return trust.origin(environ)


def test_nothing_is_believed_without_trusted_proxies() -> None:
    forged = {"x_forwarded_proto": "https", "x_forwarded_for": "192.0.2.1",
              "x_forwarded_ssl": "on", "forwarded": "for=192.0.2.1;proto=https"}
    assert origin(ProxyTrust(), "127.0.0.1", **forged) == Origin(False, "127.0.0.1")
    assert origin(ProxyTrust(), "127.0.0.1", "https") == Origin(True, "127.0.0.1")
    assert origin(PROXIES, "10.0.1.5", **forged) == Origin(False, "10.0.1.5")


def test_a_trusted_proxy_names_the_scheme_and_the_client() -> None:
    assert origin(PROXIES, "10.0.0.7", x_forwarded_proto="https",
                  x_forwarded_for="192.0.2.1") == Origin(True, "192.0.2.1", "10.0.0.7")
    # TLS to us, but the client spoke plain HTTP to the proxy
    assert origin(PROXIES, "10.0.0.7", "https", x_forwarded_proto="http").secure is False
    # no scheme claimed: the connection's own
    assert origin(PROXIES, "10.0.0.7", "https").secure is True
    assert origin(PROXIES, "10.0.0.7", x_forwarded_proto="https, http").secure is False
    assert origin(PROXIES, "2001:db8::1", x_forwarded_for="[2001:db8::77]").client \
        == "2001:db8::77"


@pytest.mark.parametrize(("chain", "client"), [
    ("192.0.2.1", "192.0.2.1"),
    ("203.0.113.5, 192.0.2.1", "192.0.2.1"),  # the leftmost is whatever the client wrote
    ("192.0.2.1, 10.0.0.9, 10.0.0.8", "192.0.2.1"),  # through more trusted proxies
    ("10.0.0.9, 10.0.0.8", "10.0.0.9"),  # all trusted: the farthest
    ("192.0.2.1, junk, 10.0.0.9", "10.0.0.9"),  # unreadable: the last hop we trust
    ("junk", "10.0.0.7"),
    ("", "10.0.0.7"),
])
def test_x_forwarded_for_is_read_from_the_right(chain: str, client: str) -> None:
    assert origin(PROXIES, "10.0.0.7", x_forwarded_for=chain).client == client


def test_a_bad_trusted_proxy_is_refused() -> None:
    with pytest.raises(ValueError, match="'10.0.0.300'"):
        Config(trusted_proxies=("10.0.0.300",))
    with pytest.raises(ValueError, match="'proxy.example'"):
        ProxyTrust(["proxy.example"])
