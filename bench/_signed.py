"""Signed GetKey load client: each request is signed afresh (WS-Security, P-256, the
code KmsClient uses) and each response's signature is verified against the pinned
server certificate, as KmsClient does. A repeated message would be refused as a replay,
so nothing is prebuilt but the key material."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from _soap import (MESSAGE_ID_PLACEHOLDER, SOAP12_CONTENT_TYPE, HttpError, KeepAliveConnection,
                   SoapRequest)
from lxml import etree


@dataclass(frozen=True)
class SignedSoapClientFactory:
    """Picklable: the unsigned GetKey spec plus the paths of the key material."""

    spec: SoapRequest
    key_pem: str
    cert_pem: str
    server_cert_pem: str

    def __call__(self) -> SignedSoapClient:
        return SignedSoapClient(self)


class SignedSoapClient:
    def __init__(self, f: SignedSoapClientFactory) -> None:
        from cryptography import x509

        from kms_ws.client.addressing import AddressingPlugin
        from kms_ws.client.signing import SignaturePlugin, load_signing_key

        self._spec = f.spec
        self._addressing = AddressingPlugin(f"http://{f.spec.host}:{f.spec.port}{f.spec.path}")
        self._plugin = SignaturePlugin(self._addressing,
                                       load_signing_key(Path(f.key_pem), Path(f.cert_pem)), True)
        self._plugin.server_cert = x509.load_pem_x509_certificate(
            Path(f.server_cert_pem).read_bytes())
        self._conn = KeepAliveConnection(f.spec.host, f.spec.port,
                                         {"Content-Type": SOAP12_CONTENT_TYPE})

    def render(self) -> bytes:
        mid = f"uuid:{uuid.uuid4()}"
        self._addressing.last_message_id = mid
        env = etree.fromstring(self._spec.body.replace(MESSAGE_ID_PLACEHOLDER, mid).encode())
        self._plugin.egress(env, {}, None, None)
        return etree.tostring(env)

    def request(self) -> str | None:
        try:
            status, payload = self._conn.post(self._spec.path, self.render())
        except (OSError, HttpError) as exc:
            self._conn.close()
            return f"{type(exc).__name__}: {exc}"
        if status != 200:
            return f"HTTP {status}: {payload[:200]!r}"
        try:
            self._plugin.ingress(etree.fromstring(payload), {}, None)
        except Exception as exc:  # noqa: BLE001 - any verification failure is an error
            return f"response not verified: {exc}"
        if self._spec.expect not in payload:
            return f"missing {self._spec.expect.decode()}: {payload[:200]!r}"
        return None

    def close(self) -> None:
        self._conn.close()
