"""Forwarded headers (X-Forwarded-Proto, -Ssl, -Protocol, -For) are the word of whoever
sent the request. Without `trusted_proxies` the server believes only the connection
itself: a caller on plain HTTP that claims HTTPS gets no HTTP Basic, no unwrapped key and
no https:// WSDL address. With the proxy's address configured, what that proxy forwards
is believed, and only from that address: the forwarded client address is the caller's
(unwrapped delivery to loopback callers, the access log)."""

from __future__ import annotations

import base64
import http.client
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from lxml import etree

from kms_ws.security import wssecurity
from kms_ws.security.certificates import self_signed

from ..support.envelopes import create_key, envelope
from ..support.schema_check import validate_envelope
from ..support.server import ADMIN, ServerProcess, kms
from ..support.signing import new_key, signed

pytestmark = pytest.mark.e2e
S = "{http://www.w3.org/2003/05/soap-envelope}"
K = "{urn:kms-ws:p1619.3:1}"
RANDOM = "<kms:GetRandomBytes><kms:NumberOfBytes>8</kms:NumberOfBytes></kms:GetRandomBytes>"
BASIC = "Basic " + base64.b64encode(":".join(ADMIN).encode()).decode()
PROXY = "127.0.0.2"  # a loopback address of its own: the configured proxy
FORGED = [{"X-Forwarded-Proto": "https"}, {"X-Forwarded-Ssl": "on"},
          {"X-Forwarded-Protocol": "ssl"}, {"Forwarded": "for=127.0.0.1;proto=https"},
          {"X-Forwarded-Proto": "https", "X-Forwarded-For": "127.0.0.1"}]


@dataclass
class Answer:
    status: int
    body: bytes
    envelope: etree._Element | None

    @property
    def subcode(self) -> str | None:
        assert self.envelope is not None, self.body[:300]
        return self.envelope.findtext(f".//{S}Subcode/{S}Value")

    @property
    def unwrapped_key(self) -> bytes | None:
        """The key value delivered in the clear (WrappingType none), if any."""
        assert self.envelope is not None, self.body[:300]
        blob = self.envelope.find(f".//{K}KeyBlob")
        if blob is None or blob.findtext(f"{K}WrappingType") != "none":
            return None
        return base64.b64decode(blob.findtext(f"{K}Data") or "")

    @property
    def reason(self) -> str:
        assert self.envelope is not None, self.body[:300]
        return self.envelope.findtext(f".//{S}Reason/{S}Text") or ""


def call(srv: ServerProcess, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None, source: str = "127.0.0.1") -> Answer:
    """One request on a fresh connection from `source` (a loopback address)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30,
                                      source_address=(source, 0))
    try:
        hdrs = {"Content-Type": "application/soap+xml;charset=UTF-8", **(headers or {})}
        if body is not None:
            validate_envelope(body)
        conn.request(method, path, body, hdrs)
        response = conn.getresponse()
        payload = response.read()
        env = validate_envelope(payload) \
            if (response.getheader("Content-Type") or "").startswith("application/soap+xml") \
            else None
        return Answer(response.status, payload, env)
    finally:
        conn.close()


def wsdl_address(srv: ServerProcess, headers: dict[str, str], source: str = "127.0.0.1") -> str:
    answer = call(srv, "GET", "/wsman?wsdl", headers=headers, source=source)
    assert answer.status == 200
    found = set(etree.fromstring(answer.body).xpath("//*[local-name()='address']/@location"))
    assert len(found) == 1, found  # every port of the service at the one address
    return str(found.pop())


def make_server(data: Path, security: dict, config: dict | None = None
                ) -> tuple[ServerProcess, wssecurity.SigningKey]:
    """A server with the password administrator ADMIN and an administrator that signs
    its requests (so it is served over plain HTTP without Basic)."""
    srv = ServerProcess(data, workers=1, security=security, config=config)
    srv.bootstrap()
    key = new_key()
    cert = self_signed(key, "signing-admin")
    (data / "signer.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kms("client", "add", "signing-admin", "--admin", "--cert", str(data / "signer.pem"),
        "--data-dir", str(data))
    srv.start()
    return srv, wssecurity.SigningKey(key, cert)


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[ServerProcess, wssecurity.SigningKey]]:
    """No proxy configured; Basic only over TLS; unwrapped keys only over TLS."""
    srv, key = make_server(tmp_path_factory.mktemp("direct") / "data",
                           {"allow_basic_over_http": False, "unwrapped_delivery": "tls"})
    yield srv, key
    assert srv.stop() == 0, srv.stderr_text()


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[ServerProcess, wssecurity.SigningKey]]:
    """Behind a proxy at PROXY; Basic only over TLS; unwrapped keys over TLS or to a
    loopback caller."""
    srv, key = make_server(tmp_path_factory.mktemp("proxied") / "data",
                           {"allow_basic_over_http": False,
                            "unwrapped_delivery": "tls-or-loopback"},
                           {"trusted_proxies": [f"{PROXY}/32"]})
    yield srv, key
    assert srv.stop() == 0, srv.stderr_text()


@pytest.mark.parametrize("forged", FORGED)
def test_a_forged_scheme_does_not_make_basic_acceptable(direct, forged) -> None:  # type: ignore[no-untyped-def]
    srv, _ = direct
    answer = call(srv, "POST", "/wsman", envelope(RANDOM, op="GetRandomBytes"),
                  {"Authorization": BASIC, **forged})
    assert answer.subcode == "wsman:AccessDenied"
    assert "refused over plain HTTP" in answer.reason
    assert "kms-ws serve --allow-basic-over-http" in answer.reason  # the local-use way out
    assert answer.envelope is not None and answer.envelope.find(f".//{K}RandomBytes") is None


@pytest.mark.parametrize("forged", FORGED)
def test_a_forged_scheme_gets_no_unwrapped_key(direct, forged) -> None:  # type: ignore[no-untyped-def]
    srv, key = direct
    name = f"forged-{uuid.uuid4().hex[:8]}"
    answer = call(srv, "POST", "/wsman", signed(create_key(name), "CreateKey", key), forged)
    assert answer.subcode == "kms:WrappingRequired"
    assert answer.envelope is not None and answer.envelope.find(f".//{K}KeyBlob") is None
    # nothing was created either
    lookup = f"<kms:GetKey><kms:FriendlyName>{name}</kms:FriendlyName></kms:GetKey>"
    assert call(srv, "POST", "/wsman", signed(lookup, "GetKey", key)).subcode == "kms:NotFound"


@pytest.mark.parametrize("forged", FORGED)
def test_the_wsdl_address_does_not_follow_a_forged_scheme(direct, forged) -> None:  # type: ignore[no-untyped-def]
    srv, _ = direct
    assert wsdl_address(srv, forged) == f"http://127.0.0.1:{srv.port}/wsman"


def test_what_a_configured_proxy_forwards_is_believed(proxied) -> None:  # type: ignore[no-untyped-def]
    srv, key = proxied
    tls = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}
    answer = call(srv, "POST", "/wsman", envelope(RANDOM, op="GetRandomBytes"),
                  {"Authorization": BASIC, **tls}, source=PROXY)
    assert answer.status == 200 and answer.envelope is not None
    assert len(base64.b64decode(answer.envelope.findtext(f".//{K}RandomBytes") or "")) == 8
    assert wsdl_address(srv, tls, source=PROXY) == f"https://127.0.0.1:{srv.port}/wsman"
    # the client behind the proxy is the caller: over TLS at the proxy it gets its key
    created = call(srv, "POST", "/wsman", signed(create_key("via-proxy"), "CreateKey", key),
                   tls, source=PROXY)
    assert created.status == 200 and len(created.unwrapped_key or b"") == 32
    assert " 198.51.100.7 POST /wsman CreateKey 200 " in srv.stderr_text()


def test_the_forwarded_client_address_is_the_callers(proxied) -> None:  # type: ignore[no-untyped-def]
    """Plain HTTP at the proxy: a remote client is not a loopback caller (no unwrapped
    key), a loopback client behind the proxy is; the proxy's own address is neither."""
    srv, key = proxied
    remote = call(srv, "POST", "/wsman", signed(create_key("remote"), "CreateKey", key),
                  {"X-Forwarded-Proto": "http", "X-Forwarded-For": "203.0.113.9"},
                  source=PROXY)
    assert remote.subcode == "kms:WrappingRequired"
    chain = call(srv, "POST", "/wsman", signed(create_key("chain"), "CreateKey", key),
                 {"X-Forwarded-For": f"203.0.113.9, {PROXY}"}, source=PROXY)
    assert chain.subcode == "kms:WrappingRequired"
    local = call(srv, "POST", "/wsman", signed(create_key("local"), "CreateKey", key),
                 {"X-Forwarded-For": "127.0.0.1"}, source=PROXY)
    assert local.status == 200 and len(local.unwrapped_key or b"") == 32


def test_a_proxy_that_names_no_client_leaves_the_proxy_as_the_caller(proxied) -> None:  # type: ignore[no-untyped-def]
    """No X-Forwarded-For, or an unreadable one: the caller is the proxy itself (here a
    loopback address, so it gets its key unwrapped), and no scheme is claimed."""
    srv, key = proxied
    for headers in ({}, {"X-Forwarded-For": "not-an-address"}):
        answer = call(srv, "POST", "/wsman", signed(create_key("p"), "CreateKey", key),
                      headers, source=PROXY)
        assert answer.status == 200 and len(answer.unwrapped_key or b"") == 32
    assert wsdl_address(srv, {}, source=PROXY) == f"http://127.0.0.1:{srv.port}/wsman"


@pytest.mark.parametrize("forged", FORGED)
def test_a_configured_proxy_does_not_make_others_believed(proxied, forged) -> None:  # type: ignore[no-untyped-def]
    srv, key = proxied
    answer = call(srv, "POST", "/wsman", envelope(RANDOM, op="GetRandomBytes"),
                  {"Authorization": BASIC, **forged})
    assert answer.subcode == "wsman:AccessDenied"
    assert wsdl_address(srv, forged) == f"http://127.0.0.1:{srv.port}/wsman"
    spoofed = call(srv, "POST", "/wsman", signed(create_key("spoofed"), "CreateKey", key),
                   {**forged, "X-Forwarded-For": "203.0.113.77"})
    # the caller is 127.0.0.1, a loopback one, whatever it claims
    assert spoofed.status == 200 and len(spoofed.unwrapped_key or b"") == 32
    assert " 203.0.113.77 " not in srv.stderr_text()
