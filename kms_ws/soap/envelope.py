"""SOAP response envelopes (1.2, or 1.1 for a SOAP 1.1 request) with WS-Addressing 2004/08
headers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lxml import etree

from ..security.xml import Spliced, splice
from ..wsman.addressing import Addressing
from ..xmlns import ANONYMOUS, SOAP, SOAP11, WSA, WSU


@dataclass(frozen=True)
class SoapVersion:
    """A SOAP version as its HTTP binding carries it."""

    ns: str  # the Envelope namespace
    content_type: str  # of what we send
    mime: str  # the media type a request of this version carries

    @property
    def envelope(self) -> str:
        return f"{{{self.ns}}}Envelope"


SOAP_12 = SoapVersion(SOAP, "application/soap+xml;charset=UTF-8", "application/soap+xml")
SOAP_11 = SoapVersion(SOAP11, "text/xml;charset=UTF-8", "text/xml")
VERSIONS = (SOAP_12, SOAP_11)


def version_of(root: etree._Element) -> SoapVersion | None:
    """The version whose Envelope `root` is, or None."""
    return next((v for v in VERSIONS if root.tag == v.envelope), None)


def version_of_content_type(content_type: str | None) -> SoapVersion:
    """What a request's Content-Type announces (text/xml: SOAP 1.1), for faults answered
    before its Envelope is read."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return SOAP_11 if media == SOAP_11.mime else SOAP_12


def new_envelope(version: SoapVersion = SOAP_12
                 ) -> tuple[etree._Element, etree._Element, etree._Element]:
    env = etree.Element(version.envelope, nsmap={"s": version.ns, "wsa": WSA, "wsu": WSU})
    header = etree.SubElement(env, f"{{{version.ns}}}Header")
    body = etree.SubElement(env, f"{{{version.ns}}}Body")
    return env, header, body


def address(header: etree._Element, action: str, request: Addressing) -> None:
    """To (anonymous), Action, a new MessageID, RelatesTo the request's MessageID."""
    etree.SubElement(header, f"{{{WSA}}}To").text = ANONYMOUS
    etree.SubElement(header, f"{{{WSA}}}Action").text = action
    etree.SubElement(header, f"{{{WSA}}}MessageID").text = f"uuid:{uuid.uuid4()}"
    if request.message_id:
        etree.SubElement(header, f"{{{WSA}}}RelatesTo").text = request.message_id


Finish = Callable[..., None]  # finish(env, spliced): e.g. sign the envelope


def response_parts(action: str, request: Addressing, payloads: list[etree._Element],
                   headers: list[etree._Element], finish: Finish | None = None,
                   spliced: Sequence[Spliced] = (), version: SoapVersion = SOAP_12) -> bytes:
    """A response with any number of Body children (WS-Transfer Delete: none) and extra
    header blocks after the addressing headers; `spliced` text goes into the Body."""
    env, header, body = new_envelope(version)
    address(header, action, request)
    header.extend(headers)
    body.extend(payloads)
    return serialize(env, finish, spliced)


def serialize(env: etree._Element, finish: Finish | None = None,
              spliced: Sequence[Spliced] = ()) -> bytes:
    if finish is not None:
        finish(env, spliced)
    return splice(etree.tostring(env, xml_declaration=True, encoding="UTF-8"), spliced)
