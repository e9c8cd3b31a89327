"""Schema validation of every message tests send and receive; and no header block of a
server's message asks to be understood (JAX-WS and gSOAP refuse such a response)."""

from __future__ import annotations

import uuid
from typing import Any

import requests
from lxml import etree
from zeep import Plugin

from kms_ws.wsman.addressing import must_understand
from kms_ws.xmlns import KMS, SOAP, WSA

from .schema_check import validate_envelope


def check_server_message(env: etree._Element) -> etree._Element:
    """A message the server sent: no header block is mustUnderstand (a client without
    WS-Security must be able to ignore the signature; issue 13.1)."""
    soap = etree.QName(env).namespace
    header = env.find(f"{{{soap}}}Header")
    marked = [h.tag for h in (header if header is not None else [])
              if isinstance(h.tag, str) and must_understand(h, soap)]
    assert not marked, f"the server marked {marked} mustUnderstand"
    return env


class ValidatingPlugin(Plugin):  # type: ignore[misc]
    """A zeep plugin validating each envelope (after our addressing headers are added);
    soap11: of a client bound to the SOAP 1.1 port."""

    def __init__(self, soap11: bool = False) -> None:
        self.sent = 0
        self.received = 0
        self.soap11 = soap11
        self.check_requests = True  # False: a test sends invalid requests on purpose

    def egress(self, envelope: Any, http_headers: dict, operation: Any,
               binding_options: Any) -> tuple[Any, dict]:
        if self.check_requests:
            validate_envelope(etree.tostring(envelope), soap11=self.soap11)
        self.sent += 1
        return envelope, http_headers

    def ingress(self, envelope: Any, http_headers: dict, operation: Any) -> tuple[Any, dict]:
        check_server_message(validate_envelope(etree.tostring(envelope), soap11=self.soap11))
        self.received += 1
        return envelope, http_headers


CT = "application/soap+xml;charset=UTF-8"
CT11 = "text/xml; charset=utf-8"


def post(url: str, body: bytes, *, auth: tuple[str, str] | None = None,
         headers: dict[str, str] | None = None, validate_request: bool = True,
         **kwargs: Any) -> tuple[requests.Response, etree._Element | None]:
    """POST raw SOAP; validates the request (when it is meant to be valid) and always the
    response envelope. Returns the response and its parsed envelope."""
    if validate_request:
        validate_envelope(body)
    r = requests.post(url, data=body, auth=auth, timeout=30,
                      headers={"Content-Type": CT, **(headers or {})}, **kwargs)
    env = None
    if r.headers.get("Content-Type", "").startswith("application/soap+xml"):
        env = check_server_message(validate_envelope(r.content))
        check_binding_status(r.status_code, r.headers, env)
    return r, env


def post11(url: str, body: bytes, *, action: str | None = None,
           auth: tuple[str, str] | None = None, headers: dict[str, str] | None = None,
           validate_request: bool = True, **kwargs: Any
           ) -> tuple[requests.Response, etree._Element | None]:
    """POST a SOAP 1.1 request (text/xml, SOAPAction `action` quoted, or "" without one);
    validates it and, always, the response: a SOAP 1.1 envelope, text/xml."""
    if validate_request:
        validate_envelope(body, soap11=True)
    r = requests.post(url, data=body, auth=auth, timeout=30, headers={
        "Content-Type": CT11, "SOAPAction": f'"{action or ""}"', **(headers or {})}, **kwargs)
    env = None
    if r.headers.get("Content-Type", "").startswith("text/xml"):
        env = check_server_message(validate_envelope(r.content, soap11=True))
        check_binding_status(r.status_code, r.headers, env)
    return r, env


def check_binding_status(status: int, headers: Any, env: etree._Element) -> None:
    """The SOAP HTTP bindings: 200 for a response; a SOAP 1.2 fault 400 when Sender, 500
    for Receiver, MustUnderstand and VersionMismatch (Part 2 §7.5.2), a SOAP 1.1 fault 500
    (WS-I Basic Profile R1126); 401 (with a Basic challenge) only for an access denial
    where HTTP authentication failed."""
    s = f"{{{etree.QName(env).namespace}}}"
    fault = env.find(f"{s}Body/{s}Fault")
    if fault is None:
        assert status == 200, status
        return
    soap12 = s == f"{{{SOAP}}}"
    code = fault.findtext(f"{s}Code/{s}Value") if soap12 else fault.findtext("faultcode")
    assert code, etree.tostring(fault)
    if status == 401:
        sub = fault.findtext(f"{s}Code/{s}Subcode/{s}Value") if soap12 else code
        assert (not soap12 or code.endswith(":Sender")) and sub.endswith(":AccessDenied"), \
            (code, sub)
        assert headers.get("WWW-Authenticate", "").startswith("Basic "), headers
    else:
        assert status == (400 if soap12 and code.endswith(":Sender") else 500), (status, code)
        assert "WWW-Authenticate" not in headers


def answers(url: str, message: bytes, times: int, *,
            auth: tuple[str, str] | None = None) -> list[tuple[int, str | None]]:
    """Post `message` `times` times (a replay, say): each answer's HTTP status and
    kms:ErrorCode."""
    found = []
    for _ in range(times):
        r, env = post(url, message, auth=auth)
        found.append((r.status_code, env.findtext(f".//{{{KMS}}}ErrorCode")
                      if env is not None else None))
    return found


def with_new_message_id(message: bytes) -> bytes:
    """The message with a fresh wsa:MessageID (its signatures are left as they were)."""
    tree = etree.fromstring(message)
    tree.find(f".//{{{WSA}}}MessageID").text = f"uuid:{uuid.uuid4()}"
    return etree.tostring(tree)
