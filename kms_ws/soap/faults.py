"""The ONE fault mapper: any error becomes a SOAP 1.2 fault envelope and an HTTP status.

Domain errors carry their code, subcode and P1619.3 error code; envelope-level problems
(MustUnderstand, VersionMismatch) are SoapFault. Anything else is an internal error: the
client sees a generic reason and the request id, the log gets the trace.

The HTTP status follows the SOAP 1.2 HTTP binding (Part 2 §7.5.2): Sender 400;
Receiver, MustUnderstand and VersionMismatch 500. Only where HTTP authentication itself
failed (no credential, or a wrong HTTP Basic one, on a request carrying no other
credential) is it 401, with a WWW-Authenticate challenge. Toolkits (JAX-WS, gSOAP, .NET)
read a fault body only with 400 or 500: any other status would lose the typed detail.
"""

from __future__ import annotations

from lxml import etree

from ..domain.errors import CredentialRequired, InvalidCredentials, KmsError
from ..xmlns import FAULT_DETAIL, KMS, PREFIXES, SOAP, WSA, WSMAN, WSMAN_FAULT_ACTION, XML
from ..wsman.addressing import Addressing
from . import envelope

_S = "{%s}" % SOAP

_FAULT_ACTIONS = {
    "wsa": WSA + "/fault",
    "wsen": "http://schemas.xmlsoap.org/ws/2004/09/enumeration/fault",
    "wxf": "http://schemas.xmlsoap.org/ws/2004/09/transfer/fault",
    "wse": "http://schemas.xmlsoap.org/ws/2004/08/eventing/fault",
}


class SoapFault(Exception):
    """An envelope-level fault: Code MustUnderstand or VersionMismatch, no subcode."""

    def __init__(self, code: str, reason: str, not_understood: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason
        self.not_understood = not_understood


def http_status(exc: KmsError | SoapFault, http_auth: bool = False) -> int:
    """The HTTP status of a fault (see the module doc). http_auth: the request carries no
    credential but, perhaps, HTTP Basic."""
    if http_auth and isinstance(exc, (CredentialRequired, InvalidCredentials)):
        return 401
    return 400 if exc.code == "Sender" else 500


def fault_response(exc: Exception, addr: Addressing, request_id: str,
                   finish: envelope.Finish | None = None,
                   http_auth: bool = False) -> tuple[int, bytes]:
    """(HTTP status, fault envelope). http_auth: as for `http_status`."""
    if not isinstance(exc, (KmsError, SoapFault)):
        raise TypeError("fault_response takes KmsError or SoapFault") from exc
    status = http_status(exc, http_auth)
    env, header, body = envelope.new_envelope()
    fault = etree.SubElement(body, _S + "Fault")
    if isinstance(exc, SoapFault):
        _code(fault, "s:" + exc.code, None)
        _reason(fault, exc.reason)
        for i, qname in enumerate(exc.not_understood):
            ns, local = qname[1:].split("}", 1)
            nu = etree.SubElement(header, _S + "NotUnderstood", nsmap={f"h{i}": ns})
            nu.set("qname", f"h{i}:{local}")
        action = WSMAN_FAULT_ACTION
    else:
        _code(fault, "s:" + exc.code, exc.subcode)
        _reason(fault, exc.reason)
        _detail(fault, exc, request_id)
        action = _FAULT_ACTIONS.get(exc.subcode.split(":", 1)[0], WSMAN_FAULT_ACTION)
    envelope.address(header, action, addr)
    return status, envelope.serialize(env, finish)


def _code(fault: etree._Element, code: str, subcode: str | None) -> None:
    c = etree.SubElement(fault, _S + "Code")
    etree.SubElement(c, _S + "Value").text = code
    if subcode:
        prefix = subcode.split(":", 1)[0]
        sub = etree.SubElement(c, _S + "Subcode", nsmap={prefix: PREFIXES[prefix]})
        etree.SubElement(sub, _S + "Value").text = subcode


def _reason(fault: etree._Element, text: str) -> None:
    r = etree.SubElement(fault, _S + "Reason")
    t = etree.SubElement(r, _S + "Text")
    t.set(f"{{{XML}}}lang", "en")
    t.text = text


def _detail(fault: etree._Element, exc: KmsError, request_id: str) -> None:
    detail = etree.SubElement(fault, _S + "Detail")
    if exc.fault_detail:
        fd = etree.SubElement(detail, f"{{{WSMAN}}}FaultDetail", nsmap={"wsman": WSMAN})
        fd.text = FAULT_DETAIL + exc.fault_detail
    kf = etree.SubElement(detail, f"{{{KMS}}}KmsFault", nsmap={"kms": KMS})
    etree.SubElement(kf, f"{{{KMS}}}ErrorCode").text = exc.error_code
    etree.SubElement(kf, f"{{{KMS}}}RequestId").text = request_id
    for name in exc.supported:
        etree.SubElement(kf, f"{{{KMS}}}Supported").text = name
