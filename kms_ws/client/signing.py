"""Message signatures for KmsClient: a zeep plugin on the server's own XML-Signature
profile (kms_ws.security.wssecurity: lxml exclusive c14n + cryptography; no python-xmlsec,
no SHA-1; signxml and xmlsec1 verify it in tests).

Egress: sign the Body, a fresh Timestamp and every header block (wsa:To, Action,
MessageID, ReplyTo, wsman:ResourceURI, SelectorSet, OptionSet, the credential and PEP
proof headers, ...) with the client's key. Ingress: verify the server's signature
against the pinned server certificate; the header blocks the client acts on
(RESPONSE_HEADERS) must be covered, each once; RelatesTo must be this request's
MessageID and Action the answer to its action (a fault: a fault action); zeep and the
WS-Management channel then see the verified Body and, in the Header, the verified copies
of the signed header blocks only. An unsigned, forged, stale, incompletely signed or
unrelated response raises.

A fault the server signed without RelatesTo (it refused the request before it could read
it: a message over its size limit, not well-formed, another SOAP version) is accepted,
and raised as that fault, only as a fault (never a result), signed by the pinned key,
created after this request was sent (less the clock skew tolerance) and seen once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from zeep import Plugin

from ..domain.errors import MessageSecurityError, ReplayedMessage, UnknownSigner
from ..security import wssecurity
from ..security.certificates import der
from ..security.settings import SecuritySettings
from ..wsman import addressing
from ..xmlns import KMS, SOAP, WSA, WSA10, WSMAN, WSSE
from .addressing import AddressingPlugin

# The header blocks of a response (and of a server -> client call) the client acts on:
# each must be signed, and given once.
RESPONSE_HEADERS = frozenset(
    [f"{{{ns}}}{name}" for ns in (WSA, WSA10)
     for name in ("To", "Action", "MessageID", "RelatesTo", "ReplyTo")]
    + [f"{{{KMS}}}UpdateVersioningTokens", f"{{{WSMAN}}}TotalItemsCountEstimate"])
_FAULT = f"{{{SOAP}}}Fault"


def load_signing_key(key_pem: str | Path | bytes, cert_pem: str | Path | bytes | None = None,
                     *, key_name: str | None = None,
                     password: bytes | None = None) -> wssecurity.SigningKey:
    """An EC or RSA key (PEM) and its certificate: the certificate travels with each
    request as a BinarySecurityToken, or give key_name (the registered endpoint name) to
    reference it instead."""
    key = serialization.load_pem_private_key(_bytes(key_pem), password)
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise ValueError("signing keys are EC or RSA")
    cert = x509.load_pem_x509_certificate(_bytes(cert_pem)) if cert_pem is not None else None
    if cert is None and key_name is None:
        raise ValueError("give the certificate or the registered key_name")
    return wssecurity.SigningKey(key, cert, key_name)


def hmac_signing_key(name: str, secret: bytes) -> wssecurity.SigningKey:
    """HMAC-SHA256 with a SymmetricKey credential registered for endpoint `name`."""
    return wssecurity.SigningKey(secret, None, name)


def _bytes(v: str | Path | bytes | None) -> bytes:
    if isinstance(v, bytes):
        return v
    return Path(str(v)).read_bytes()


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class SignaturePlugin(Plugin):
    def __init__(self, addressing: AddressingPlugin, signing_key: wssecurity.SigningKey | None,
                 verify_responses: bool, settings: SecuritySettings | None = None) -> None:
        self.addressing = addressing
        self.signing_key = signing_key
        self.verify_responses = verify_responses
        self.server_cert: x509.Certificate | None = None
        # (the certificate it was made for, the resolver): made again if server_cert changes
        self._resolver: tuple[x509.Certificate, wssecurity.Resolver] | None = None
        self.settings = settings or SecuritySettings()
        self._sent = utcnow()  # when the last request left
        self._unbound: dict[str, datetime] = {}  # unbound faults accepted, until they expire

    def sending(self) -> None:
        """A request leaves now (a fault answering no request must be younger)."""
        self._sent = utcnow()

    def egress(self, envelope: Any, http_headers: dict[str, str], operation: Any,
               binding_options: Any) -> tuple[Any, dict[str, str]]:
        self.sending()
        if self.signing_key is not None:
            wssecurity.sign(envelope, self.signing_key, now=self._sent,
                            ttl_seconds=self.settings.timestamp_ttl_seconds)
        return envelope, http_headers

    def ingress(self, envelope: Any, http_headers: dict[str, str],
                operation: Any) -> tuple[Any, dict[str, str]]:
        if not self.verify_responses:
            return envelope, http_headers
        header = envelope.find(f"{{{SOAP}}}Header")
        if not wssecurity.has_security(header):
            raise MessageSecurityError("the response is not signed")
        verified = wssecurity.verify(envelope, self._resolve, self.settings, utcnow())
        addressing.check_unique(header, RESPONSE_HEADERS)
        wssecurity.require_signed(verified, RESPONSE_HEADERS)
        addr = addressing.read(verified.header)
        fault = verified.body.find(_FAULT) is not None
        if addr.relates_to is None and fault:
            self._unbound_fault(verified)
        elif addr.relates_to != self.addressing.last_message_id:
            raise MessageSecurityError("the response does not answer this request")
        answer = f"{self.addressing.last_action}Response"
        if not ((addr.action or "").endswith("/fault") if fault else addr.action == answer):
            raise MessageSecurityError(f"the response's action {addr.action} is not "
                                       f"{'a fault action' if fault else answer}")
        _use_verified(header, verified.header)
        envelope.replace(envelope.find(f"{{{SOAP}}}Body"), verified.body)
        return envelope, http_headers

    def _unbound_fault(self, verified: wssecurity.VerifiedMessage) -> None:
        """A signed fault that answers no MessageID: the server refused a request it could
        not read. Taken only if made after this request left and not seen before."""
        skew = timedelta(seconds=self.settings.clock_skew_seconds)
        if verified.created < self._sent - skew:
            raise MessageSecurityError("a fault that answers no request, made before this "
                                       "request was sent")
        now = utcnow()
        for digest in [d for d, until in self._unbound.items() if until < now]:
            del self._unbound[digest]
        if verified.digest in self._unbound:
            raise ReplayedMessage("a fault that answers no request, received before")
        self._unbound[verified.digest] = verified.accept_until

    def _resolve(self, ref: wssecurity.KeyRef) -> wssecurity.VerificationKey:
        if self.server_cert is None:
            raise UnknownSigner("the response is not signed by the server's key")
        if self._resolver is None or self._resolver[0] is not self.server_cert:
            self._resolver = (self.server_cert, server_resolver(self.server_cert))
        return self._resolver[1](ref)


def _use_verified(header: Any, verified: Any) -> None:
    """The Header as received holds, from now on, the verified copies of the header
    blocks (and the Security header, which nothing acts on): anything else is dropped."""
    security = header.find(f"{{{WSSE}}}Security")
    for block in [b for b in header if b is not security]:
        header.remove(block)
    for block in list(verified):
        security.addprevious(block)


def server_resolver(cert: x509.Certificate) -> wssecurity.Resolver:
    """Accepts a signature by the server's certificate only (responses, and the calls the
    server makes to a client's listener): named by its thumbprint (as the server sends
    it) or sent whole (as a token), it must be the pinned certificate, and
    the pinned certificate's key verifies the signature. Another certificate is a
    certificate change (or an impostor), refused saying which certificate it was."""
    cert_der = der(cert)
    pinned = wssecurity.thumbprint_sha1(cert_der)
    key = wssecurity.VerificationKey("server", cert=cert)

    def resolve(ref: wssecurity.KeyRef) -> wssecurity.VerificationKey:
        matches = ref.thumbprint == pinned if ref.thumbprint is not None \
            else ref.certificate == cert_der
        if matches:
            return key
        if ref.key_name is not None:
            raise UnknownSigner("the message names its signing key by name, not by the "
                                "pinned server certificate")
        named = ref.thumbprint if ref.thumbprint is not None \
            else wssecurity.thumbprint_sha1(ref.certificate or b"")
        raise UnknownSigner(
            f"the message is signed with the certificate of thumbprint {named.hex()}, not "
            f"the pinned server certificate ({pinned.hex()}): the server's signing "
            "certificate changed, or someone else signed it; pin the new certificate "
            "(server_cert) only once you have checked it another way")
    return resolve
