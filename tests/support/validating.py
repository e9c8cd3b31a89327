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
    header = env.find(f"{{{SOAP}}}Header")
    marked = [h.tag for h in (header if header is not None else [])
              if isinstance(h.tag, str) and must_understand(h)]
    assert not marked, f"the server marked {marked} mustUnderstand"
    return env


class ValidatingPlugin(Plugin):  # type: ignore[misc]
    """A zeep plugin validating each envelope (after our addressing headers are added)."""

    def __init__(self) -> None:
        self.sent = 0
        self.received = 0

    def egress(self, envelope: Any, http_headers: dict, operation: Any,
               binding_options: Any) -> tuple[Any, dict]:
        validate_envelope(etree.tostring(envelope))
        self.sent += 1
        return envelope, http_headers

    def ingress(self, envelope: Any, http_headers: dict, operation: Any) -> tuple[Any, dict]:
        check_server_message(validate_envelope(etree.tostring(envelope)))
        self.received += 1
        return envelope, http_headers


CT = "application/soap+xml;charset=UTF-8"


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


def check_binding_status(status: int, headers: Any, env: etree._Element) -> None:
    """The SOAP 1.2 HTTP binding (Part 2 §7.5.2): 200 for a response, 400 for a Sender
    fault, 500 for Receiver, MustUnderstand and VersionMismatch; 401 (with a Basic
    challenge) only for wsman:AccessDenied, where HTTP authentication failed."""
    code = env.findtext(f"{{{SOAP}}}Body/{{{SOAP}}}Fault/{{{SOAP}}}Code/{{{SOAP}}}Value")
    if code is None:
        assert status == 200, status
    elif status == 401:
        sub = env.findtext(f".//{{{SOAP}}}Subcode/{{{SOAP}}}Value") or ""
        assert code.endswith(":Sender") and sub.endswith(":AccessDenied"), (code, sub)
        assert headers.get("WWW-Authenticate", "").startswith("Basic "), headers
    else:
        assert status == (400 if code.endswith(":Sender") else 500), (status, code)
        assert "WWW-Authenticate" not in headers


def answers(url: str, message: bytes, times: int, *,
            auth: tuple[str, str] | None = None) -> list[tuple[int, str | None]]:
    """Post `message` `times` times (a replay, say): each answer's HTTP status and
    kms:ErrorCode."""
    found = []
    for _ in range(times):
        r, env = post(url, message, auth=auth)
        found.append((r.status_code, env.findtext(".//{%s}ErrorCode" % KMS)
                      if env is not None else None))
    return found


def with_new_message_id(message: bytes) -> bytes:
    """The message with a fresh wsa:MessageID (its signatures are left as they were)."""
    tree = etree.fromstring(message)
    tree.find(".//{%s}MessageID" % WSA).text = f"uuid:{uuid.uuid4()}"
    return etree.tostring(tree)
