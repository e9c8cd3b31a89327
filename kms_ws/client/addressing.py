"""A zeep plugin that adds WS-Addressing 2004/08 headers (To, Action, MessageID, ReplyTo)
to every request, and the session credential header when the client has one. The
WS-Addressing 1.0 headers zeep adds itself when the WSDL gives an operation a wsam:Action
are removed: the server refuses an addressing property given in both versions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from lxml import etree
from zeep import Plugin

from ..xmlns import ANONYMOUS, KMS, SOAP, WSA, WSA10


class AddressingPlugin(Plugin):
    def __init__(self, address: str) -> None:
        self.address = address
        self.session_token: str | None = None
        self.last_message_id: str | None = None
        self.last_action: str | None = None  # what a response must answer
        # set for one call: (message id) -> kms:PepCredential header (a PEP's proof, §4.6)
        self.pep_proof: Callable[[str], etree._Element] | None = None

    def egress(self, envelope: Any, http_headers: dict[str, str], operation: Any,
               binding_options: Any) -> tuple[Any, dict[str, str]]:
        header = envelope.find(f"{{{SOAP}}}Header")
        if header is None:
            header = etree.Element(f"{{{SOAP}}}Header")
            envelope.insert(0, header)
        for zeeps in header.findall(f"{{{WSA10}}}*"):
            header.remove(zeeps)
        self.last_message_id = f"uuid:{uuid.uuid4()}"
        self.last_action = operation.soapaction
        values = [("To", self.address), ("Action", operation.soapaction),
                  ("MessageID", self.last_message_id)]
        for name, text in values:
            el = etree.SubElement(header, f"{{{WSA}}}{name}", nsmap={"wsa": WSA})
            el.text = text
        reply = etree.SubElement(header, f"{{{WSA}}}ReplyTo", nsmap={"wsa": WSA})
        etree.SubElement(reply, f"{{{WSA}}}Address").text = ANONYMOUS
        if self.session_token and header.find(f"{{{KMS}}}Credential") is None:
            cred = etree.SubElement(header, f"{{{KMS}}}Credential", nsmap={"kms": KMS})
            etree.SubElement(cred, f"{{{KMS}}}CredentialType").text = "Session"
            etree.SubElement(cred, f"{{{KMS}}}SessionToken").text = self.session_token
        if self.pep_proof is not None:
            header.append(self.pep_proof(self.last_message_id))
        return envelope, http_headers
