"""`kms-ws serve --tls-cert --tls-key` serves HTTPS."""

from __future__ import annotations

import socket
import ssl
import warnings

import pytest
import requests

from kms_ws.client import KmsClient

from ..support.pki import server_cert
from ..support.server import ADMIN, ServerProcess

pytestmark = pytest.mark.e2e


def test_https_serves_keys_and_refuses_untrusted_clients(tmp_path, validator) -> None:  # type: ignore[no-untyped-def]
    cert, key = server_cert(tmp_path)
    srv = ServerProcess(tmp_path / "data", workers=1, tls=(cert, key))
    srv.bootstrap()
    srv.start()
    try:
        assert srv.url.startswith("https://")
        with KmsClient(srv.url, *ADMIN, verify=str(cert), plugins=[validator]) as c:
            created = c.create_key(friendly_name="over-tls")
            assert c.get_key(created.key_id).value == created.value
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(srv.url + "?wsdl", timeout=10)  # not verified against our cert
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(srv.url.replace("https://", "http://") + "?wsdl", timeout=10)
    finally:
        assert srv.stop() == 0


def test_tls_below_1_2_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A client that offers only TLS 1.1 (its own OpenSSL allowing it) gets the server's
    protocol-version alert; the same client allowing TLS 1.2 connects."""
    cert, key = server_cert(tmp_path)
    srv = ServerProcess(tmp_path / "data", workers=1, tls=(cert, key))
    srv.bootstrap()
    srv.start()

    def client(maximum: ssl.TLSVersion) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(cert))
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = maximum
        return ctx

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old = client(ssl.TLSVersion.TLSv1_1)
        with (
            socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock,
            pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"),
        ):
            old.wrap_socket(sock, server_hostname="127.0.0.1")
        with (
            socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock,
            client(ssl.TLSVersion.TLSv1_2).wrap_socket(
                    sock, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.version() == "TLSv1.2"
    finally:
        assert srv.stop() == 0
