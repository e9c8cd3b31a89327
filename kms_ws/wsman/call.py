"""One WS-Management call as the translation modules see it, and their reply.

The translation modules (identify, transfer, enumeration, eventing) turn a WS-* message into
a service request, run it through KmsService (authentication, transaction, audit) and
turn the result into response elements. Nothing is decided here."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lxml import etree

from ..codec.kms import parse_time
from ..domain.errors import OperationTimedOut, SchemaValidationError
from ..security.xml import Spliced, text_of
from ..service.context import Transport
from ..service.dispatch import KmsService
from ..service.messages import Credential
from ..xmlns import WSA, WSMAN
from .addressing import Addressing
from .headers import WsManHeaders, parse_duration


@dataclass
class WsCall:
    service: KmsService
    addr: Addressing
    headers: WsManHeaders
    payload: etree._Element | None
    credential: Credential | None
    request_id: str
    transport: Transport  # how the request arrived (TLS, REMOTE_ADDR)
    started: float = field(default_factory=time.monotonic)

    def run(self, operation: str, request: Any) -> Any:
        self.check_deadline()
        result = self.service.run(operation, self.credential, request, self.request_id,
                                  self.transport)
        self.check_deadline()
        return result

    def deadline(self) -> float | None:
        t = self.headers.operation_timeout
        return None if t is None else self.started + t

    def check_deadline(self) -> None:
        d = self.deadline()
        if d is not None and time.monotonic() >= d:
            raise OperationTimedOut(f"the operation did not complete within the "
                                    f"OperationTimeout of {self.headers.operation_timeout:g} s")


@dataclass
class WsReply:
    action: str
    body: list[etree._Element] = field(default_factory=list)
    headers: list[etree._Element] = field(default_factory=list)
    spliced: list[Spliced] = field(default_factory=list)  # text the Body receives as sent


WsHandler = Callable[[WsCall], WsReply]


def expiration(el: etree._Element | None) -> tuple[float | None, datetime | None]:
    """wsen:/wse:Expires: an xs:duration (seconds) or an xs:dateTime."""
    text = text_of(el).strip() if el is not None else ""
    if not text:
        return None, None
    if text.startswith("P"):
        return parse_duration(text), None
    try:
        return None, parse_time(text)
    except ValueError:
        raise SchemaValidationError(f"Expires is neither a duration nor a time: {text[:40]!r}") \
            from None


def duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S"


def epr(parent: etree._Element | None, tag: str, address: str, resource_uri: str | None,
        selectors: dict[str, str] | None = None,
        params: list[etree._Element] = ()) -> etree._Element:  # type: ignore[assignment]
    """A WS-Addressing endpoint reference naming a WS-Management resource instance."""
    el = etree.Element(tag) if parent is None else etree.SubElement(parent, tag)
    etree.SubElement(el, f"{{{WSA}}}Address").text = address
    rp = etree.SubElement(el, f"{{{WSA}}}ReferenceParameters")
    if resource_uri:
        etree.SubElement(rp, f"{{{WSMAN}}}ResourceURI").text = resource_uri
    if selectors:
        sset = etree.SubElement(rp, f"{{{WSMAN}}}SelectorSet")
        for name, value in selectors.items():
            sel = etree.SubElement(sset, f"{{{WSMAN}}}Selector", Name=name)
            sel.text = value
    for p in params:
        rp.append(p)
    return el
