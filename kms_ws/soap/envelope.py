"""SOAP 1.2 response envelopes with WS-Addressing 2004/08 headers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

from lxml import etree

from ..security.xml import Spliced, splice
from ..wsman.addressing import Addressing
from ..xmlns import ANONYMOUS, SOAP, WSA, WSU

_NSMAP = {"s": SOAP, "wsa": WSA, "wsu": WSU}


def new_envelope() -> tuple[etree._Element, etree._Element, etree._Element]:
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap=_NSMAP)
    header = etree.SubElement(env, f"{{{SOAP}}}Header")
    body = etree.SubElement(env, f"{{{SOAP}}}Body")
    return env, header, body


def address(header: etree._Element, action: str, request: Addressing) -> None:
    """To (anonymous), Action, a new MessageID, RelatesTo the request's MessageID."""
    etree.SubElement(header, f"{{{WSA}}}To").text = ANONYMOUS
    etree.SubElement(header, f"{{{WSA}}}Action").text = action
    etree.SubElement(header, f"{{{WSA}}}MessageID").text = f"uuid:{uuid.uuid4()}"
    if request.message_id:
        etree.SubElement(header, f"{{{WSA}}}RelatesTo").text = request.message_id


Finish = Callable[..., None]  # finish(env, spliced): e.g. sign the envelope


def response(action: str, request: Addressing, payload: etree._Element,
             finish: Finish | None = None) -> bytes:
    return response_parts(action, request, [payload], [], finish)


def response_parts(action: str, request: Addressing, payloads: list[etree._Element],
                   headers: list[etree._Element], finish: Finish | None = None,
                   spliced: Sequence[Spliced] = ()) -> bytes:
    """A response with any number of Body children (WS-Transfer Delete: none) and extra
    header blocks after the addressing headers; `spliced` text goes into the Body."""
    env, header, body = new_envelope()
    address(header, action, request)
    header.extend(headers)
    body.extend(payloads)
    return serialize(env, finish, spliced)


def serialize(env: etree._Element, finish: Finish | None = None,
              spliced: Sequence[Spliced] = ()) -> bytes:
    if finish is not None:
        finish(env, spliced)
    return splice(etree.tostring(env, xml_declaration=True, encoding="UTF-8"), spliced)
