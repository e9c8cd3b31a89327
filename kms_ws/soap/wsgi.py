"""The WSGI application: POST /wsman (SOAP 1.2; SOAP 1.1 for the §6 operations), GET
/wsman?wsdl; GET /healthz, /readyz and (when on) /metrics for monitoring.

Request path: size limit -> hardened parse -> envelope (its SOAP version: a SOAP 1.1
request is answered in SOAP 1.1, but WS-Management is SOAP 1.2 only) and mustUnderstand
checks -> message signature (verify; every header block the server acts on must be
signed, and from here on only the verified Body and header blocks are used) -> header
blocks given once -> route by action -> schema validation of the Body -> credential (the
signer, a header credential, HTTP Basic or a TLS client certificate) -> decode ->
service -> encode -> response with WS-Addressing headers, signed with the server's key.
Every failure goes through the one fault mapper; nothing but a fault (and a request id)
reaches the client.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from ..codec import kms
from ..domain.errors import (
    ActionMismatch,
    ActionNotSupported,
    CredentialRequired,
    EncodingLimit,
    EnvelopeTooLarge,
    InternalError,
    KmsError,
    SchemaValidationError,
)
from ..domain.model import CredentialType
from ..security import wssecurity
from ..security import xml as secure_xml
from ..security.forwarded import ProxyTrust
from ..security.http_auth import parse_basic, peer_certificate
from ..security.settings import SecuritySettings
from ..service.context import Transport
from ..service.dispatch import OPERATIONS, KmsService, utcnow
from ..service.messages import Credential, VerifiedSignature
from ..wsman import actions as wsman_actions
from ..wsman import addressing
from ..wsman import headers as wsman_headers
from ..wsman.call import WsCall, WsHandler
from ..xmlns import KMS, action
from . import envelope, faults, metrics
from .envelope import SOAP_11, SOAP_12, SoapVersion
from .metrics import PrometheusMonitor
from .wsdl import action_aliases

log = logging.getLogger("kms_ws.access")
errlog = logging.getLogger("kms_ws.errors")

StartResponse = Callable[..., Any]
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")
# request action -> (§6 operation, response action), aliases included; WS-Management:
# wsman.actions
_ACTIONS = {uri: (op, out) for op in OPERATIONS for uri, out in action_aliases(op).items()}
_K = f"{{{KMS}}}"
_TRANSPORT = "kms_ws.transport"
_PROBES = ("/healthz", "/readyz", "/metrics")


class SoapApplication:
    def __init__(self, service: KmsService, settings: SecuritySettings,
                 validator: etree.XMLSchema, wsdl: bytes, placeholder_url: bytes,
                 signing_key: wssecurity.SigningKey | None = None,
                 ws_validator: etree.XMLSchema | None = None,
                 proxies: ProxyTrust | None = None,
                 monitor: PrometheusMonitor | None = None) -> None:
        self.service = service
        self.monitor = monitor
        self.proxies = proxies or ProxyTrust()
        self.settings = settings
        self.validator = validator
        self.ws_validator = ws_validator
        self.wsdl = wsdl
        self.placeholder_url = placeholder_url
        self.signing_key = signing_key if settings.sign_responses else None
        self.signing_cert = b""
        if signing_key is not None and signing_key.cert is not None:
            self.signing_cert = signing_key.cert.public_bytes(Encoding.PEM)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        op, fault = "-", ""
        if path in _PROBES:
            status, headers, body = self._probe(path, method, environ)
        elif path != "/wsman":
            status, headers, body = 404, [("Content-Type", "text/plain")], b"not found\n"
        elif method == "GET" and environ.get("QUERY_STRING", "").lower() == "wsdl":
            status, headers, body = 200, [("Content-Type", "text/xml;charset=UTF-8")], \
                self._wsdl(environ)
        elif method == "GET" and environ.get("QUERY_STRING", "").lower() == "signing-cert" \
                and self.signing_cert:
            status, headers, body = 200, [("Content-Type", "application/x-pem-file")], \
                self.signing_cert
        elif method != "POST":
            status, headers, body = 405, [("Allow", "POST"), ("Content-Type", "text/plain")], \
                b"POST SOAP here, or GET ?wsdl\n"
        else:
            request_id = uuid.uuid4().hex[:16]
            status, body, op, version, fault = self._soap(environ, request_id)
            headers = [("Content-Type", version.content_type), ("X-Request-Id", request_id)]
            if status == 401:
                headers.append(("WWW-Authenticate", 'Basic realm="kms-ws", charset="UTF-8"'))
        headers.append(("Content-Length", str(len(body))))
        start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
        seconds = time.perf_counter() - started
        if self.monitor is not None and path == "/wsman" and method == "POST":
            self.monitor.request(op, fault, seconds)
        # probes come every few seconds: their lines only at DEBUG
        log.log(logging.DEBUG if path in _PROBES else logging.INFO,
                '%s %s %s %s %d %d %.1fms', self._transport(environ).remote_addr or "-", method,
                path, op, status, len(body), seconds * 1000)
        return [body]

    # ---- health, readiness, metrics (no credential; nothing revealed) ---------------
    def _probe(self, path: str, method: str, environ: dict[str, Any]
               ) -> tuple[int, list[tuple[str, str]], bytes]:
        if method != "GET":
            return 405, [("Allow", "GET"), ("Content-Type", "text/plain")], b"GET only\n"
        text = [("Content-Type", "text/plain"), ("Cache-Control", "no-store")]
        if path == "/healthz":  # the process answers
            return 200, text, b"ok\n"
        if path == "/readyz":  # the same answer whatever the cause: details in the log
            reason = self.service.readiness()
            if reason is None:
                return 200, text, b"ready\n"
            errlog.warning("not ready: %s", reason)
            return 503, text, b"not ready\n"
        if self.monitor is None:
            return 404, [("Content-Type", "text/plain")], b"not found\n"
        if self._transport(environ).remote_addr not in self.monitor.allowed:
            return 403, text, b"forbidden\n"
        return 200, [("Content-Type", metrics.CONTENT_TYPE), ("Cache-Control", "no-store")], \
            self.monitor.exposition()

    # ---- WSDL ----------------------------------------------------------------------
    def _wsdl(self, environ: dict[str, Any]) -> bytes:
        host = environ.get("HTTP_HOST", "")
        if not _HOST.match(host):
            return self.wsdl
        scheme = "https" if self._transport(environ).secure else "http"
        return self.wsdl.replace(self.placeholder_url, f"{scheme}://{host}/wsman".encode())

    # ---- SOAP ----------------------------------------------------------------------
    def _soap(self, environ: dict[str, Any], request_id: str
              ) -> tuple[int, bytes, str, SoapVersion, str]:
        """(HTTP status, response, operation, SOAP version, fault subcode or "")."""
        addr = addressing.Addressing()
        op = "-"
        http_auth = False  # the request carries no credential but, perhaps, HTTP Basic
        # until the Envelope is read, the version the Content-Type announces
        version = envelope.version_of_content_type(environ.get("CONTENT_TYPE"))
        try:
            root = secure_xml.parse(self._read_body(environ), self.settings)
            version, header, body_el = _envelope_parts(root)
            addr = addressing.read(header)
            transport_action = _transport_action(environ, version)
            if version is SOAP_11 and self._is_wsman(addr.action or transport_action, body_el):
                raise faults.SoapFault("VersionMismatch", "WS-Management is served in SOAP "
                                       "1.2 only", upgrade=(SOAP_12,))
            missed = addressing.not_understood(header, version.ns)
            if missed:
                raise faults.SoapFault("MustUnderstand", "header not understood: " +
                                       ", ".join(h.tag for h in missed),
                                       tuple(h.tag for h in missed))
            verified = None
            if wssecurity.has_security(header):
                verified = self._verify(root, header)
                header, body_el = verified.header, verified.body  # only what was signed
                addr = addressing.read(header)
            else:
                addressing.check_unique(header)
            # A signed request goes where what it signed says: its wsa:Action, else its
            # Body; never the action HTTP carries (Content-Type, SOAPAction), which a relay
            # can change.
            carried = transport_action if verified is None else None
            http_auth = _http_auth_only(environ, header, verified)
            ws = self._wsman_route(addr, carried, body_el) if version is SOAP_12 else None
            if ws is not None:
                op = ws[0]
                return 200, self._wsman(ws[1], addr, header, body_el, environ, request_id,
                                        verified), op, version, ""
            op, payload, reply_action = self._route(addr, carried, body_el)
            if op == "Authenticate" and payload.find(_K + "Credential") is not None:
                http_auth = False  # the credential in the Body is the one authenticated
            self._validate(payload)
            credential = self._with_pep_proof(self._credential(environ, header, verified),
                                              header, addr)
            result = self.service.run(op, credential, kms.DECODERS[op](payload), request_id,
                                      self._transport(environ))
            answer, spliced = kms.encode_response(op, result)
            out = envelope.response_parts(reply_action, addr, [answer], [], self._sign,
                                          spliced, version)
            return 200, out, op, version, ""
        except (KmsError, faults.SoapFault) as exc:
            status, out = faults.fault_response(exc, addr, request_id, self._sign, http_auth,
                                                version)
            return status, out, op, version, metrics.fault_label(exc)
        except Exception:  # noqa: BLE001 - the last line of defence; logged with its trace
            errlog.exception("request %s failed", request_id)
            status, out = faults.fault_response(
                InternalError(f"internal error; quote request id {request_id}"), addr,
                request_id, self._sign, version=version)
            return status, out, op, version, metrics.fault_label(InternalError(""))

    def _verify(self, root: etree._Element, header: etree._Element
                ) -> wssecurity.VerifiedMessage:
        """A signed request: its signature verified, and every header block the server
        acts on present once and covered by it. A signer's request refused for its
        headers is an audit record of the signer (nothing else changes)."""
        verified = wssecurity.verify(root, self.service.verification_key, self.settings,
                                     utcnow())
        try:
            addressing.check_unique(header)
            wssecurity.require_signed(verified, addressing.ACTED_ON)
        except KmsError as exc:
            self.service.refuse(_operation(addressing.read(verified.header).action),
                                verified.signer_id, exc)
            raise
        return verified

    def _sign(self, env: etree._Element, spliced: Sequence[secure_xml.Spliced] = ()) -> None:
        """Every response, faults included, is signed: Body, Timestamp and every header
        block the server adds (no mustUnderstand: a client may ignore the signature)."""
        if self.signing_key is None:
            return
        prefix = faults.fault_code_prefix(env)
        wssecurity.sign(env, self.signing_key, now=utcnow(),
                        ttl_seconds=self.settings.timestamp_ttl_seconds,
                        body_prefixes=[prefix] if prefix else (), spliced=spliced,
                        must_understand=False)

    def _read_body(self, environ: dict[str, Any]) -> bytes:
        limit = self.settings.max_message_bytes
        length = environ.get("CONTENT_LENGTH") or ""
        stream = environ["wsgi.input"]
        if length.strip():
            try:
                n = int(length)
            except ValueError:
                raise SchemaValidationError("bad Content-Length") from None
            if n > limit:
                if n <= _DRAIN_LIMITS * limit:  # read, so the connection can carry the fault
                    _drain(stream, n)
                raise EncodingLimit(f"message of {n} bytes exceeds the limit of {limit} bytes")
            return _read(stream, n) if n > 0 else b""
        data = _read(stream, limit + 1)
        if len(data) > limit:
            raise EncodingLimit(f"message exceeds the limit of {limit} bytes")
        return data

    def _route(self, addr: addressing.Addressing, carried: str | None,
               body_el: etree._Element) -> tuple[str, etree._Element, str]:
        """(operation, its Body element, the response action). carried: the action the
        transport names (SOAPAction, Content-Type action). An alias of an operation's
        action (wsdl.action_aliases) routes to it and is answered with its pair."""
        payload = next((c for c in body_el if isinstance(c.tag, str)), None)
        uri = addr.action or carried
        if uri is None and payload is not None and payload.tag.startswith(_K):
            uri = action(payload.tag[len(_K):])
        if uri is None:
            raise ActionNotSupported("the request names no action (wsa:Action, SOAPAction, "
                                     "the Content-Type action parameter or a Body element)")
        if uri not in _ACTIONS:
            raise ActionNotSupported(f"action {uri} is not supported")
        op, reply_action = _ACTIONS[uri]
        if addr.action and carried and _ACTIONS.get(carried, ("",))[0] != op:
            raise ActionMismatch(f"wsa:Action {addr.action} and the transport's action "
                                 f"{carried} name different operations")
        if payload is None or payload.tag != _K + op:
            raise SchemaValidationError(f"the Body must hold kms:{op} for action {uri}")
        return op, payload, reply_action

    def _wsman_route(self, addr: addressing.Addressing, carried: str | None,
                     body_el: etree._Element) -> tuple[str, WsHandler] | None:
        payload = next((c for c in body_el if isinstance(c.tag, str)), None)
        uri = addr.action or carried or wsman_actions.implied_action(payload)
        handler = wsman_actions.ACTIONS.get(uri or "")
        return (uri.rsplit("/", 1)[-1], handler) if uri and handler else None

    def _is_wsman(self, uri: str | None, body_el: etree._Element) -> bool:
        """A WS-Management request: its action is one, or it has none and is Identify."""
        if uri:
            return uri in wsman_actions.ACTIONS
        payload = next((c for c in body_el if isinstance(c.tag, str)), None)
        return wsman_actions.implied_action(payload) is not None

    def _wsman(self, handler: WsHandler, addr: addressing.Addressing,
               header: etree._Element | None, body_el: etree._Element,
               environ: dict[str, Any], request_id: str, verified: Any) -> bytes:
        """A WS-Management action: headers, Body validated against the WS-* subsets,
        the translation function, and the response within MaxEnvelopeSize."""
        hdrs = wsman_headers.read(header)
        payload = next((c for c in body_el if isinstance(c.tag, str)), None)
        assert self.ws_validator is not None  # the composition root always gives one
        if payload is not None and not self.ws_validator.validate(payload):
            err = self.ws_validator.error_log.last_error  # type: ignore[attr-defined]  # lxml-stubs 0.5 lacks it
            raise SchemaValidationError(f"schema validation failed: {err.message if err else ''}"
                                        [:500])
        credential = self._with_pep_proof(self._credential(environ, header, verified), header,
                                          addr)
        call = WsCall(self.service, addr, hdrs, payload, credential, request_id,
                      self._transport(environ))
        reply = handler(call)
        out = envelope.response_parts(reply.action, addr, reply.body, reply.headers, self._sign,
                                      reply.spliced)
        if hdrs.max_envelope_size is not None and len(out) > hdrs.max_envelope_size:
            raise EnvelopeTooLarge(f"the response ({len(out)} octets) exceeds MaxEnvelopeSize "
                                   f"{hdrs.max_envelope_size}")
        return out

    def _transport(self, environ: dict[str, Any]) -> Transport:
        """How the request arrived (kms_ws.security.forwarded), worked out once."""
        found = environ.get(_TRANSPORT)
        if found is None:
            origin = self.proxies.origin(environ)
            try:
                loopback = ipaddress.ip_address(origin.client or "").is_loopback
            except ValueError:
                loopback = False
            found = environ[_TRANSPORT] = Transport(secure=origin.secure, loopback=loopback,
                                                    remote_addr=origin.client)
        return found

    def _validate(self, payload: etree._Element) -> None:
        if not self.validator.validate(payload):
            err = self.validator.error_log.last_error  # type: ignore[attr-defined]  # as above
            raise SchemaValidationError(f"schema validation failed: {err.message if err else ''}"
                                        [:500])

    def _with_pep_proof(self, credential: Credential | None, header: etree._Element | None,
                        addr: addressing.Addressing) -> Credential | None:
        """A kms:PepCredential header (§4.6): the PEP's own proof, checked by the service."""
        el = header.find(_K + "PepCredential") if header is not None else None
        if el is None or credential is None:
            return credential
        self._validate(el)
        if not addr.message_id:
            raise SchemaValidationError("a request carrying a PEP proof has a wsa:MessageID")
        return replace(credential, pep_proof=kms.decode_pep_proof(el, addr.message_id))

    def _credential(self, environ: dict[str, Any], header: etree._Element | None,
                    verified: wssecurity.VerifiedMessage | None) -> Credential | None:
        """What the request presents, as it was presented: nothing is looked up here (the
        service authenticates the caller in the request's unit of work)."""
        if verified is not None:  # the signer; unsigned header content is not used
            kind = CredentialType.SYMMETRIC_KEY if verified.symmetric \
                else CredentialType.ASYMMETRIC_KEY
            assert verified.key_fingerprint is not None  # the service's keys all have one
            return Credential(kind, signature=VerifiedSignature(
                verified.signer_id, verified.key_fingerprint, verified.digest,
                verified.accept_until))
        if header is not None:
            el = header.find(_K + "Credential")
            if el is not None:
                self._validate(el)
                return kms.decode_credential(el)
        auth = environ.get("HTTP_AUTHORIZATION")
        if not auth:
            cert = peer_certificate(environ)
            return None if cert is None else Credential(CredentialType.ASYMMETRIC_KEY,
                                                        peer_certificate=cert)
        basic = parse_basic(auth)
        if basic is None:
            raise CredentialRequired("only HTTP Basic is accepted in the Authorization header")
        return Credential(CredentialType.USERNAME_PASSWORD, username=basic[0], password=basic[1])


def _operation(action_uri: str | None) -> str:
    """The operation a (signed) wsa:Action names, for the audit trail."""
    if action_uri is None:
        return "-"
    if action_uri in _ACTIONS:
        return _ACTIONS[action_uri][0]
    return action_uri.rsplit("/", 1)[-1] if action_uri in wsman_actions.ACTIONS else "-"


# An oversize body of up to this many times the limit is read and dropped before the
# fault is answered: the client, still sending, then reads the fault, and its connection
# stays usable. A larger one is not read: the connection is closed after the fault.
_DRAIN_LIMITS = 4


def _drain(stream: Any, n: int) -> None:
    while n > 0:
        chunk = _read(stream, min(n, 65536))
        if not chunk:
            return
        n -= len(chunk)


def _read(stream: Any, n: int) -> bytes:
    try:
        data: bytes = stream.read(n)
        return data
    except OSError:  # the body did not arrive within the HTTP front's request deadline
        raise SchemaValidationError("the message did not arrive in full") from None




def _http_auth_only(environ: dict[str, Any], header: etree._Element | None,
                    verified: wssecurity.VerifiedMessage | None) -> bool:
    """Whether the request carries no credential but, perhaps, HTTP Basic: not signed, no
    kms:Credential header, and HTTP Basic or no TLS client certificate (`_credential`'s
    order). Only then does an authentication failure answer 401 (faults.http_status)."""
    if verified is not None or (header is not None and header.find(_K + "Credential")
                                is not None):
        return False
    return bool(environ.get("HTTP_AUTHORIZATION")) or peer_certificate(environ) is None


def _transport_action(environ: dict[str, Any], version: SoapVersion) -> str | None:
    """The action the HTTP binding carries: SOAP 1.1 SOAPAction, SOAP 1.2 the Content-Type
    action parameter."""
    if version is SOAP_11:
        return addressing.action_from_soap_action(environ.get("HTTP_SOAPACTION"))
    return addressing.action_from_content_type(environ.get("CONTENT_TYPE"))


def _envelope_parts(root: etree._Element
                    ) -> tuple[SoapVersion, etree._Element | None, etree._Element]:
    """The SOAP version, Header and Body. An Envelope of another namespace is a SOAP 1.2
    VersionMismatch naming the versions we speak (SOAP 1.2 Part 1 §5.4.7)."""
    version = envelope.version_of(root)
    if version is None:
        if etree.QName(root).localname == "Envelope":
            raise faults.SoapFault("VersionMismatch", "the Envelope is neither SOAP 1.2 nor "
                                   "SOAP 1.1", upgrade=(SOAP_12, SOAP_11))
        raise SchemaValidationError("the document is not a SOAP Envelope")
    s = f"{{{version.ns}}}"
    children = [c for c in root if isinstance(c.tag, str)]
    header = children[0] if children and children[0].tag == s + "Header" else None
    rest = children[1:] if header is not None else children
    if len(rest) != 1 or rest[0].tag != s + "Body":
        raise SchemaValidationError("the Envelope must hold an optional Header and one Body")
    return version, header, rest[0]


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
            413: "Payload Too Large", 500: "Internal Server Error", 501: "Not Implemented",
            502: "Bad Gateway", 503: "Service Unavailable"}
