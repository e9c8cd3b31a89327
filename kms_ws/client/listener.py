"""The KMS Client Service (wsdl/kms-client.wsdl) as a small HTTP listener run by a client:
the server calls it with §6.11 UpdatePending and §6.10 GetStatus, and tells it with
WS-Eventing SubscriptionEnd that it ended a subscription.

    def on_update(notice):            # UpdateNotice: type, scope, tokens
        tokens = catch_up(notice)     # e.g. yield from client.get_update_list(...)
        return tokens                 # acknowledged; None: not yet (the server repeats)

    with client.listener(on_update, status=lambda req: {...}, on_end=print) as listener:
        client.subscribe(listener.url)

The server signs these calls with its signing key, as it signs its responses: the Body,
a Timestamp and every header block. The listener verifies each one against the server
certificate (`server_cert`; KmsClient.listener passes the one the client trusts for
responses) before anything in it is used, and answers an unsigned, forged, stale,
replayed or incompletely signed call (a header block it acts on left out or given twice),
one addressed to another listener (the signed wsa:To: by default another port or path
than this listener's; `addresses=` names the URLs the server calls it at, behind a proxy
or NAT) or whose signed wsa:Action is not its Body's, with a SOAP fault: no callback
runs. `verify_requests=False` turns that off (like KmsClient's verify_responses).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from lxml import etree

from ..domain.errors import KmsError, MessageSecurityError, ReplayedMessage
from ..security import wssecurity
from ..security import xml as secure_xml
from ..security.settings import SecuritySettings
from ..security.xml import child_text, text_of
from ..soap.faults import fault_response
from ..wsman.addressing import Addressing, check_unique, read
from ..xmlns import ANONYMOUS, KMS, SOAP, WSA, WSE, action
from .signing import RESPONSE_HEADERS, server_resolver, utcnow

_S, _K, _E = f"{{{SOAP}}}", f"{{{KMS}}}", f"{{{WSE}}}"
_SETTINGS = SecuritySettings(max_message_bytes=64 * 1024)
# The call each Body element is (its wsa:Action).
_ACTIONS = {_K + "UpdatePending": action("UpdatePending"), _K + "GetStatus": action("GetStatus"),
            _E + "SubscriptionEnd": f"{WSE}/SubscriptionEnd"}


@dataclass(frozen=True)
class UpdateNotice:
    type: str
    client_id: str | None
    pep_id: str | None
    tokens: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SubscriptionEnded:
    """WS-Eventing SubscriptionEnd: the server ended a subscription (Status
    …/SourceCancelling or …/DeliveryFailure) for the Reason given."""

    subscription_id: str
    status: str
    reason: str


UpdateHandler = Callable[[UpdateNotice], Mapping[str, int] | None]
EndHandler = Callable[[SubscriptionEnded], None]
StatusHandler = Callable[[dict[str, str | None]], Mapping[str, Any]]
_STATUS_FIELDS = ("EndpointId", "Locale", "OperatingMode", "KeysInUse", "RekeyStatus")


class ClientServiceListener:
    def __init__(self, on_update: UpdateHandler, status: StatusHandler | None = None,
                 host: str = "127.0.0.1", port: int = 0,
                 inspect: Callable[[bytes], None] | None = None, *,
                 on_end: EndHandler | None = None,
                 server_cert: x509.Certificate | bytes | str | Path | None = None,
                 verify_requests: bool = True, addresses: Sequence[str] = ()) -> None:
        """inspect: called with every request and response envelope (e.g. a validator).
        on_end: called with each SubscriptionEnd. server_cert: the server's signing
        certificate (PEM bytes or file, or loaded) that verifies every call. addresses:
        the URLs the server calls this listener at, when not its own host, port and path
        (a signed call to any other is refused); empty: any name of this host."""
        if verify_requests and server_cert is None:
            raise ValueError("give the server's signing certificate (server_cert), or "
                             "verify_requests=False")
        self.on_update, self.status, self.inspect = on_update, status, inspect
        self.on_end = on_end
        self.server_cert = _certificate(server_cert) if verify_requests else None
        self.addresses = tuple(a.strip() for a in addresses)
        self.received: list[UpdateNotice] = []
        self.ended: list[SubscriptionEnded] = []
        self.refused = 0  # calls refused: unsigned, forged, stale, replayed, misaddressed, ...
        self.lock = threading.Condition()
        self._seen: dict[str, datetime] = {}  # verified signatures until they expire
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                code, body = listener.handle(self.rfile.read(n))
                self.send_response(code)
                self.send_header("Content-Type", "application/soap+xml;charset=UTF-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://{host}:{self._server.server_address[1]}/kms-client"
        self._port = self._server.server_address[1]

    def start(self) -> ClientServiceListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ClientServiceListener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, count: int, timeout: float) -> bool:
        """Block until `count` UpdatePending calls have arrived (or the timeout)."""
        with self.lock:
            return self.lock.wait_for(lambda: len(self.received) >= count, timeout)

    def wait_for_end(self, count: int, timeout: float) -> bool:
        """Block until `count` SubscriptionEnd messages have arrived (or the timeout)."""
        with self.lock:
            return self.lock.wait_for(lambda: len(self.ended) >= count, timeout)

    # ---- one request ------------------------------------------------------------------
    def handle(self, data: bytes) -> tuple[int, bytes]:
        if self.inspect is not None:
            self.inspect(data)
        code, out = self._handle(data)
        if self.inspect is not None and out:
            self.inspect(out)
        return code, out

    def _handle(self, data: bytes) -> tuple[int, bytes]:
        try:
            root = secure_xml.parse(data, _SETTINGS)
        except KmsError:
            return 400, b""
        header, body = root.find(_S + "Header"), root.find(_S + "Body")
        relates = None
        try:
            relates = read(header).message_id
            check_unique(header, RESPONSE_HEADERS)
            if self.server_cert is not None:
                header, body = self._verified(root)
                relates = self._check_call(header, body)
        except KmsError as exc:
            with self.lock:
                self.refused += 1
            return fault_response(exc, Addressing(message_id=relates), uuid.uuid4().hex[:16])
        req = next((c for c in body if isinstance(c.tag, str)), None) if body is not None \
            else None
        if req is not None and req.tag == _K + "UpdatePending":
            return 200, _response("UpdatePending", relates, self._update(req))
        if req is not None and req.tag == _E + "SubscriptionEnd":
            self._ended(req)  # one-way: nothing to answer
            return 202, b""
        if req is not None and req.tag == _K + "GetStatus" and self.status is not None:
            return 200, _response("GetStatus", relates, self._status(req))
        return 400, b""

    def _verified(self, root: etree._Element) -> tuple[etree._Element, etree._Element]:
        """The Header and Body as signed by the server; a signature is accepted once."""
        assert self.server_cert is not None
        if not wssecurity.has_security(root.find(_S + "Header")):
            raise MessageSecurityError("the call is not signed by the server")
        now = utcnow()
        verified = wssecurity.verify(root, server_resolver(self.server_cert), _SETTINGS, now)
        wssecurity.require_signed(verified, RESPONSE_HEADERS)
        with self.lock:
            for digest in [d for d, until in self._seen.items() if until < now]:
                del self._seen[digest]
            if verified.digest in self._seen:
                raise ReplayedMessage("this signed call was already received (replay)")
            self._seen[verified.digest] = verified.accept_until
        return verified.header, verified.body

    def _check_call(self, header: etree._Element, body: etree._Element) -> str | None:
        """A verified call is addressed to this listener, and its action is its Body's;
        returns its MessageID (what the answer relates to)."""
        addr = read(header)
        if not self._addressed_here(addr.to or ""):
            raise MessageSecurityError(f"the call is addressed to {addr.to}, not to this "
                                       "listener")
        req = next((c for c in body if isinstance(c.tag, str)), None)
        if req is None or _ACTIONS.get(req.tag) != addr.action:
            raise MessageSecurityError(f"the call's action {addr.action} is not its Body's")
        return addr.message_id

    def _addressed_here(self, to: str) -> bool:
        if self.addresses:
            return to in self.addresses
        url = urlsplit(to)
        try:
            port = url.port
        except ValueError:
            return False
        return url.scheme == "http" and port == self._port and url.path == "/kms-client"

    def _ended(self, req: etree._Element) -> None:
        notice = SubscriptionEnded(child_text(req, f".//{_E}Identifier") or "",
                                   (child_text(req, _E + "Status") or "").strip(),
                                   child_text(req, _E + "Reason") or "")
        if self.on_end is not None:
            self.on_end(notice)
        with self.lock:
            self.ended.append(notice)
            self.lock.notify_all()

    def _update(self, req: etree._Element) -> etree._Element:
        notice = UpdateNotice(
            child_text(req, _K + "Type") or "", child_text(req, f"{_K}Scope/{_K}ClientId"),
            child_text(req, f"{_K}Scope/{_K}PepId"),
            {t.get("Type", ""): int(text_of(t) or 0)
             for t in req.iterfind(f"{_K}UpdateVersioningTokens/{_K}Token")})
        tokens = self.on_update(notice)
        with self.lock:
            self.received.append(notice)
            self.lock.notify_all()
        out = etree.Element(_K + "UpdatePendingResponse", nsmap={"kms": KMS})
        if tokens:
            box = etree.SubElement(out, _K + "UpdateVersioningTokens")
            for t, v in tokens.items():
                etree.SubElement(box, _K + "Token", Type=t).text = str(v)
        return out

    def _status(self, req: etree._Element) -> etree._Element:
        assert self.status is not None
        values = self.status({"Locale": child_text(req, _K + "Locale"),
                              "TargetOfInterest": child_text(req, _K + "TargetOfInterest")})
        out = etree.Element(_K + "GetStatusResponse", nsmap={"kms": KMS})
        for name in _STATUS_FIELDS:
            if values.get(name) is not None:
                etree.SubElement(out, _K + name).text = str(values[name])
        pairs = values.get("Status") or {}
        if pairs:
            box = etree.SubElement(out, _K + "Status")
            for n, v in pairs.items():
                a = etree.SubElement(box, _K + "Attribute")
                etree.SubElement(a, _K + "Name").text = n
                etree.SubElement(a, _K + "Value").text = v
        return out


def _certificate(value: x509.Certificate | bytes | str | Path | None) -> x509.Certificate:
    if isinstance(value, x509.Certificate):
        return value
    pem = value if isinstance(value, bytes) else Path(str(value)).read_bytes()
    return x509.load_pem_x509_certificate(pem)


def _response(operation: str, relates: str | None, payload: etree._Element) -> bytes:
    env = etree.Element(_S + "Envelope", nsmap={"s": SOAP, "wsa": WSA, "kms": KMS})
    header = etree.SubElement(env, _S + "Header")
    etree.SubElement(header, f"{{{WSA}}}To").text = ANONYMOUS
    etree.SubElement(header, f"{{{WSA}}}Action").text = action(operation + "Response")
    etree.SubElement(header, f"{{{WSA}}}MessageID").text = f"uuid:{uuid.uuid4()}"
    if relates:
        etree.SubElement(header, f"{{{WSA}}}RelatesTo").text = relates
    etree.SubElement(env, _S + "Body").append(payload)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")
