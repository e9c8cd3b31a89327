"""Signed GetKey load client: each request is signed afresh (WS-Security, P-256, the
code KmsClient uses) and each response's signature is verified against the pinned
server certificate, as KmsClient does. A repeated message would be refused as a replay,
so nothing is prebuilt but the key material."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from _soap import SOAP12_CONTENT_TYPE, KeepAliveConnection, SoapRequest, expected
from cryptography import x509
from lxml import etree

from kms_ws.client.addressing import AddressingPlugin
from kms_ws.client.signing import SignaturePlugin, load_signing_key


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
        env = etree.fromstring(self._spec.render(mid))
        self._addressing.last_action = env.findtext("{*}Header/{*}Action")  # answered
        self._plugin.egress(env, {}, None, None)
        return etree.tostring(env)

    def request(self) -> str | None:
        payload = self._conn.exchange(self._spec.path, self.render())
        if isinstance(payload, str):
            return payload
        try:
            self._plugin.ingress(etree.fromstring(payload), {}, None)
        except Exception as exc:  # noqa: BLE001 - any verification failure is an error
            return f"response not verified: {exc}"
        return expected(self._spec, payload)

    def exchange(self) -> bytes:
        """One signed GetKey; the response as received, once verified."""
        payload = self._conn.exchange(self._spec.path, self.render())
        if isinstance(payload, str):
            raise RuntimeError(payload)
        self._plugin.ingress(etree.fromstring(payload), {}, None)
        return payload

    def close(self) -> None:
        self._conn.close()
