"""KmsClient's fast path for the calls applications make in loops (GetKey, CreateKey,
StoreKey, GetRandomBytes, PushAuditMessage): a prebuilt envelope per operation, the
request's arguments written into its Body as text, one persistent HTTP connection, and
lxml reading the answer.

It takes the argument dicts KmsClient gives zeep (element name -> value, in schema order:
None left out, a dict a complex element, a list repeated elements, bytes base64) and the
same plugins: the SignaturePlugin signs the request (when the client has a signing key)
and verifies the response exactly as on the zeep path — signature, pinned key, covered
header blocks, RelatesTo, Action, unbound faults — and the caller's plugins (a validator)
see every envelope. A response the plugins did not refuse answers with its Body's
element, or raises its fault as KmsFault.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree

from ..domain.errors import KmsError
from ..security import xml as secure_xml
from ..xmlns import ANONYMOUS, KMS, SOAP, WSA
from .addressing import AddressingPlugin
from .connection import HttpConnection
from .signing import SignaturePlugin
from .values import KmsFault, fault_from_element

OPERATIONS = ("GetKey", "CreateKey", "StoreKey", "GetRandomBytes", "PushAuditMessage")
CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
Proof = Callable[[str], etree._Element]  # (MessageID) -> the PEP's kms:PepCredential header
_FAULT = f"{{{SOAP}}}Fault"
_AFTER_MESSAGE_ID = (f"</wsa:MessageID><wsa:ReplyTo><wsa:Address>{ANONYMOUS}</wsa:Address>"
                     "</wsa:ReplyTo>")
# What lxml refuses to put in a text node (zeep then raises this ValueError too)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SESSION = ("<kms:Credential><kms:CredentialType>Session</kms:CredentialType>"
            "<kms:SessionToken>{}</kms:SessionToken></kms:Credential>")


class FastPath:
    def __init__(self, url: str, connection: HttpConnection, addressing: AddressingPlugin,
                 signature: SignaturePlugin, plugins: Sequence[Any],
                 authorization: Callable[[], str | None]) -> None:
        """plugins: the caller's zeep plugins; authorization: the HTTP Authorization
        header the client sends now (None: none)."""
        self._conn, self._addressing, self._signature = connection, addressing, signature
        self._plugins = [signature, *plugins]
        self._authorization = authorization
        # The envelope up to the MessageID, per operation (wsa:To and wsa:Action fixed).
        self._heads = {op: (f'<s:Envelope xmlns:s="{SOAP}" xmlns:wsa="{WSA}" '
                            f'xmlns:kms="{KMS}"><s:Header><wsa:To>{escape(url)}</wsa:To>'
                            f"<wsa:Action>{KMS}/{op}</wsa:Action><wsa:MessageID>")
                       for op in OPERATIONS}

    def call(self, op: str, args: Mapping[str, Any], proof: Proof | None = None
             ) -> etree._Element:
        """One request; the verified response's Body element (e.g. kms:GetKeyResponse).
        KmsFault for a fault, KmsError when the plugins refuse the response."""
        mid = f"uuid:{uuid.uuid4()}"
        self._addressing.last_message_id, self._addressing.last_action = mid, f"{KMS}/{op}"
        token = self._addressing.session_token
        data = "".join((self._heads[op], mid, _AFTER_MESSAGE_ID,
                        _SESSION.format(_escaped(token)) if token else "",
                        f"</s:Header><s:Body><kms:{op}>", _elements(args),
                        f"</kms:{op}></s:Body></s:Envelope>")).encode()
        if proof is not None or len(self._plugins) > 1 or self._signature.signing_key:
            env = etree.fromstring(data)  # our own text: the plugins work on a tree
            if proof is not None:
                env[0].append(proof(mid))
            for plugin in self._plugins:
                plugin.egress(env, {}, None, None)
            data = etree.tostring(env)
        else:
            self._signature.sending()
        headers = {"Content-Type": CONTENT_TYPE}
        authorization = self._authorization()
        if authorization is not None:
            headers["Authorization"] = authorization
        status, content_type, content = self._conn.post(data, headers)
        return self._answer(status, content_type, content)

    def _answer(self, status: int, content_type: str, content: bytes) -> etree._Element:
        if not content_type.startswith("application/soap+xml"):
            raise KmsFault(None, f"HTTP {status}", http_status=status)
        try:
            env = secure_xml.parse(content, self._signature.settings)
        except KmsError:
            raise KmsFault(None, f"HTTP {status}: the response is not a well-formed "
                           "message", http_status=status) from None
        for plugin in self._plugins:
            plugin.ingress(env, {}, None)
        body = env.find(f"{{{SOAP}}}Body")
        answer = None if body is None else next(body.iterchildren(etree.Element), None)
        if answer is not None and answer.tag == _FAULT:
            raise fault_from_element(answer, status)
        if answer is None or status != 200:
            raise KmsFault(None, f"HTTP {status}: the response has no answer",
                           http_status=status)
        return answer

    def close(self) -> None:
        self._conn.close()


def child(el: etree._Element, name: str) -> etree._Element:
    """The response's kms:`name` child; a response without it is a fault, not a crash."""
    found = el.find(f"{{{KMS}}}{name}")
    if found is None:
        raise KmsFault(None, f"the response has no {name}")
    return found


def base64_of(el: etree._Element) -> bytes:
    try:
        return base64.b64decode(secure_xml.text_of(el), validate=True)
    except binascii.Error:
        raise KmsFault(None, f"the response's {etree.QName(el).localname} is not "
                       "base64") from None


def _elements(args: Mapping[str, Any]) -> str:
    """kms elements for zeep-style arguments, in their order."""
    return "".join(_element(name, v) for name, value in args.items()
                   for v in (value if isinstance(value, list) else [value]) if v is not None)


def _element(name: str, value: Any) -> str:
    if isinstance(value, Mapping):
        text = _elements(value)
    elif isinstance(value, bytes):
        text = base64.b64encode(value).decode()
    elif isinstance(value, datetime):  # as zeep writes an xsd:dateTime
        text = value.isoformat().replace("+00:00", "Z")
    else:
        text = _escaped(str(value))
    return f"<kms:{name}>{text}</kms:{name}>"


def _escaped(text: str) -> str:
    """Element text as lxml writes it: a CR kept as a character reference."""
    if _NOT_XML.search(text):
        raise ValueError("All strings must be XML compatible: Unicode or ASCII, no NULL "
                         "bytes or control characters")
    return escape(text, {"\r": "&#13;"})
