"""WS-Addressing 2004/08 request headers, mustUnderstand, the header blocks the server
acts on (each at most once, and signed in a signed request), and action resolution.

Routing: wsa:Action; else the action the transport carries — the SOAP 1.2 `action`
parameter of the Content-Type, the SOAP 1.1 SOAPAction header (what WSDL-driven stacks
send); else the Body's element. Requests in WS-Addressing 1.0 (2005/08) are understood
too; responses use 2004/08.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from ..domain.errors import DuplicateHeader
from ..security.xml import text_of
from ..xmlns import KMS, SOAP, WSA, WSA10, WSSE, prefixed
from .headers import HANDLED

_MU_TRUE = ("true", "1")
_ACTION_PARAM = re.compile(r';\s*action\s*=\s*"?([^";]+)"?', re.IGNORECASE)


@dataclass(frozen=True)
class Addressing:
    action: str | None = None
    message_id: str | None = None
    to: str | None = None
    reply_to: str | None = None
    relates_to: str | None = None


def understood_headers() -> frozenset[str]:
    wsa = [f"{{{ns}}}{n}" for ns in (WSA, WSA10)
           for n in ("To", "Action", "MessageID", "ReplyTo", "From", "FaultTo", "RelatesTo")]
    return frozenset(wsa + [f"{{{KMS}}}Credential", f"{{{KMS}}}PepCredential",
                            f"{{{WSSE}}}Security"]) | HANDLED


UNDERSTOOD = understood_headers()
# The header blocks the server acts on: each at most once in any request, and covered by
# the signature of a signed one (wsse:Security is checked by security.wssecurity).
ACTED_ON = UNDERSTOOD - {f"{{{WSSE}}}Security"}


def check_unique(header: etree._Element | None, tags: frozenset[str] = ACTED_ON) -> None:
    """Refuse a header block in `tags` given twice (an addressing property given in both
    WS-Addressing versions counts as twice): the receiver does not guess which one."""
    if header is None:
        return
    seen: set[str] = set()
    for block in header.iterchildren(etree.Element):
        if block.tag not in tags:
            continue
        ns, _, local = block.tag[1:].partition("}")
        key = local if ns in (WSA, WSA10) else block.tag
        if key in seen:
            raise DuplicateHeader(f"the header {prefixed(block.tag)} is given more than once")
        seen.add(key)


def must_understand(el: etree._Element, soap_ns: str = SOAP) -> bool:
    """The header block's mustUnderstand (SOAP 1.2 true/1, SOAP 1.1 1), in the namespace
    of its envelope's SOAP version."""
    v = el.get(f"{{{soap_ns}}}mustUnderstand")
    if v is None:
        v = el.get("mustUnderstand")  # some clients leave it unqualified
    return v is not None and v.strip().lower() in _MU_TRUE


def not_understood(header: etree._Element | None, soap_ns: str = SOAP
                   ) -> list[etree._Element]:
    if header is None:
        return []
    return [h for h in header if isinstance(h.tag, str) and h.tag not in UNDERSTOOD
            and must_understand(h, soap_ns)]


# The properties read: tag -> (0 for WS-Addressing 2004/08, 1 for 1.0; property name)
_PROPERTIES = {f"{{{ns}}}{name}": (rank, name) for rank, ns in enumerate((WSA, WSA10))
               for name in ("Action", "MessageID", "To", "RelatesTo", "ReplyTo")}


def read(header: etree._Element | None) -> Addressing:
    """Each property from its first header block, 2004/08 before 1.0 (ReplyTo: the first
    with an Address); one pass over the Header."""
    if header is None:
        return Addressing()
    values: dict[str, tuple[int, str]] = {}
    for el in header.iterchildren(*_PROPERTIES):
        rank, name = _PROPERTIES[el.tag]
        if name in values and values[name][0] <= rank:
            continue
        if name == "ReplyTo":
            address = next(el.iterchildren(el.tag[:-len("ReplyTo")] + "Address"), None)
            if address is None:
                continue
            el = address
        values[name] = (rank, text_of(el).strip())
    got = {name: value for name, (_, value) in values.items()}
    return Addressing(got.get("Action"), got.get("MessageID"), got.get("To"),
                      got.get("ReplyTo"), got.get("RelatesTo"))


def action_from_content_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    match = _ACTION_PARAM.search(content_type)
    return match.group(1).strip() if match else None


def action_from_soap_action(value: str | None) -> str | None:
    """The SOAP 1.1 SOAPAction header: a quoted URI (WS-I BP R1109; unquoted accepted);
    empty ("") names no action."""
    v = (value or "").strip()
    if len(v) >= 2 and v[0] == v[-1] == '"':
        v = v[1:-1].strip()
    return v or None
