"""Signed responses: KmsClient verifies every response and refuses unsigned, tampered,
foreign-key or replayed ones (a man in the middle on the HTTP connection)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from requests.adapters import HTTPAdapter

from kms_ws.client import KmsClient, UntrustedResponse
from kms_ws.security.certificates import SERVER_CERT_FILE, self_signed

from ..support.server import ADMIN, ServerProcess
from ..support.signing import new_key
from ..support.validating import ValidatingPlugin

Rewrite = Callable[[bytes], bytes]


class Tamper(HTTPAdapter):
    """Rewrites SOAP responses in flight (after the server signed them)."""

    def __init__(self, rewrite: Rewrite) -> None:
        super().__init__()
        self.rewrite = rewrite
        self.active = False

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
        r = super().send(request, **kwargs)
        if self.active and request.method == "POST":
            r._content = self.rewrite(r.content)
        return r


def _client(server: ServerProcess, rewrite: Rewrite, **kw) -> tuple[KmsClient, Tamper]:  # type: ignore[no-untyped-def]
    c = KmsClient(server.url, *ADMIN, server_cert=str(server.data_dir / SERVER_CERT_FILE), **kw)
    adapter = Tamper(rewrite)
    c._http.mount("http://", adapter)
    return c, adapter


def test_pinned_certificate_verifies_responses(server: ServerProcess) -> None:
    v = ValidatingPlugin()
    with KmsClient(server.url, *ADMIN, server_cert=str(server.data_dir / SERVER_CERT_FILE),
                   plugins=[v]) as c:
        key = c.create_key(friendly_name="pinned")
        assert c.get_key(key.key_id).value == key.value
    assert v.received == 2


def test_tampered_key_value_is_refused(server: ServerProcess) -> None:
    def flip(data: bytes) -> bytes:
        start = data.index(b"<kms:Data>") + len(b"<kms:Data>")
        c = data[start:start + 1]
        return data[:start] + (b"A" if c != b"A" else b"B") + data[start + 1:]
    c, adapter = _client(server, flip)
    with c:
        key = c.create_key(friendly_name="tamper")
        adapter.active = True
        with pytest.raises(UntrustedResponse) as exc:
            c.get_key(key.key_id)
    assert "does not verify" in exc.value.reason


def test_unsigned_response_is_refused(server: ServerProcess) -> None:
    def strip(data: bytes) -> bytes:
        start = data.index(b"<wsse:Security")
        end = data.index(b"</wsse:Security>") + len(b"</wsse:Security>")
        return data[:start] + data[end:]
    c, adapter = _client(server, strip)
    with c:
        adapter.active = True
        with pytest.raises(UntrustedResponse) as exc:
            c.get_random_bytes(16)
    assert "not signed" in exc.value.reason


def test_response_to_another_request_is_refused(server: ServerProcess) -> None:
    """A genuine signed response, replayed to answer a later request."""
    captured: list[bytes] = []

    def replay(data: bytes) -> bytes:
        if not captured:
            captured.append(data)
            return data
        return captured[0]
    c, adapter = _client(server, replay)
    with c:
        adapter.active = True
        c.get_random_bytes(16)
        with pytest.raises(UntrustedResponse) as exc:
            c.get_random_bytes(16)
    assert "does not answer this request" in exc.value.reason


def test_response_signed_by_another_key_is_refused(server: ServerProcess, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.serialization import Encoding
    other = tmp_path / "other.pem"
    other.write_bytes(self_signed(new_key(), "impostor").public_bytes(Encoding.PEM))
    with KmsClient(server.url, *ADMIN, server_cert=str(other)) as c:
        with pytest.raises(UntrustedResponse) as exc:
            c.get_random_bytes(16)
    assert exc.value.error_code == "E_INVALID_CREDENTIALS"


def test_faults_are_signed_and_verified(server: ServerProcess) -> None:
    """A fault from the server is verified too; a tampered fault is not believed."""
    from kms_ws.client import KmsFault
    with KmsClient(server.url, *ADMIN, server_cert=str(server.data_dir / SERVER_CERT_FILE)) as c:
        with pytest.raises(KmsFault) as exc:
            c.get_key("00000000-0000-4000-8000-000000000000")
        assert exc.value.subcode == "kms:NotFound"

    def reword(data: bytes) -> bytes:
        return data.replace(b"E_KEY_NOT_FOUND", b"E_INTERNAL")
    c, adapter = _client(server, reword)
    with c:
        adapter.active = True
        with pytest.raises(UntrustedResponse):
            c.get_key("00000000-0000-4000-8000-000000000000")


def test_signing_certificate_is_published(server: ServerProcess) -> None:
    r = requests.get(server.url + "?signing-cert", timeout=10)
    assert r.status_code == 200
    assert r.content == (server.data_dir / SERVER_CERT_FILE).read_bytes()
