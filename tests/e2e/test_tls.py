"""`kms-ws serve --tls-cert --tls-key` serves HTTPS."""

from __future__ import annotations

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
