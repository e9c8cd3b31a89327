"""SOAP 1.2 response envelopes with WS-Addressing 2004/08 headers."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from lxml import etree

from ..xmlns import ANONYMOUS, SOAP, WSA, WSU
from ..wsman.addressing import Addressing

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


Finish = Callable[[etree._Element], None]  # e.g. sign the envelope


def response(action: str, request: Addressing, payload: etree._Element,
             finish: Finish | None = None) -> bytes:
    env, header, body = new_envelope()
    address(header, action, request)
    body.append(payload)
    return serialize(env, finish)


def serialize(env: etree._Element, finish: Finish | None = None) -> bytes:
    if finish is not None:
        finish(env)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")
