"""The ONE fault mapper: any error becomes a SOAP fault envelope and an HTTP status.

Domain errors carry a kind, their P1619.3 error code and whether they refuse the caller;
this module maps each kind to its fault (SOAP code, subcode, DSP0226 fault detail), and
the few classes that share a kind but travel on a subcode of their own (the WS-* protocol
they belong to names it) to theirs: `fault_of`. Envelope-level problems (MustUnderstand,
VersionMismatch) are SoapFault. Anything else is an internal error: the client sees a
generic reason and the request id, the log gets the trace.

A SOAP 1.2 fault has Code/Value, Subcode/Value (the prefix declared), Reason/Text and
Detail. A SOAP 1.1 fault (answering a SOAP 1.1 request) carries the subcode as its
faultcode, as the WS-Addressing and WS-Security SOAP 1.1 faults do (WS-I Basic Profile
R1004: a namespace-qualified fault code), the reason as faultstring and the same
detail; a VersionMismatch or MustUnderstand fault has the SOAP 1.1 code itself.

The HTTP status follows the SOAP HTTP bindings: SOAP 1.2 Part 2 §7.5.2, Sender 400;
Receiver, MustUnderstand and VersionMismatch 500. SOAP 1.1 (WS-I Basic Profile R1126):
500 for every fault. Only where HTTP authentication itself failed (no credential, or a
wrong HTTP Basic one, on a request carrying no other credential) is it 401, with a
WWW-Authenticate challenge. Toolkits (JAX-WS, gSOAP, .NET) read a fault body only with
400 or 500: any other status would lose the typed detail.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from lxml import etree

from ..domain import errors as e
from ..domain.errors import ErrorKind, KmsError, SelectorProblem
from ..wsman.addressing import Addressing
from ..xmlns import FAULT_DETAIL, KMS, PREFIXES, SOAP, WSA, WSMAN, WSMAN_FAULT_ACTION, XML
from . import envelope
from .envelope import SOAP_11, SOAP_12, SoapVersion

_FAULT_ACTIONS = {
    "wsa": WSA + "/fault",
    "wsen": "http://schemas.xmlsoap.org/ws/2004/09/enumeration/fault",
    "wxf": "http://schemas.xmlsoap.org/ws/2004/09/transfer/fault",
    "wse": "http://schemas.xmlsoap.org/ws/2004/08/eventing/fault",
}


@dataclass(frozen=True)
class Fault:
    """How a domain error travels: SOAP 1.2 Code/Value, Subcode/Value (a prefixed QName,
    kms_ws.xmlns.PREFIXES) and, where DSP0226 names one, the wsman:FaultDetail suffix."""

    code: str  # Sender | Receiver
    subcode: str
    detail: str | None = None


_SENDER, _RECEIVER = "Sender", "Receiver"

# Every kind's fault. The HTTP status follows from the code (http_status).
FAULTS: dict[ErrorKind, Fault] = {
    ErrorKind.INVALID_PARAMETER: Fault(_SENDER, "wsman:InvalidParameter"),
    ErrorKind.INVALID_MESSAGE: Fault(_SENDER, "wsman:SchemaValidationError"),
    ErrorKind.INVALID_HEADER: Fault(_SENDER, "wsa:InvalidMessageInformationHeader"),
    ErrorKind.INVALID_SELECTORS: Fault(_SENDER, "wsman:InvalidSelectors",
                                       "InsufficientSelectors"),
    ErrorKind.INVALID_EXPIRATION: Fault(_SENDER, "wsen:InvalidExpirationTime"),
    ErrorKind.NOT_SUPPORTED: Fault(_SENDER, "wsman:UnsupportedFeature"),
    ErrorKind.NOT_FOUND: Fault(_SENDER, "kms:NotFound"),
    ErrorKind.ALREADY_EXISTS: Fault(_SENDER, "wsman:AlreadyExists"),
    ErrorKind.AMBIGUOUS_REFERENCE: Fault(_SENDER, "kms:AmbiguousReference"),
    ErrorKind.WRONG_STATE: Fault(_SENDER, "kms:KeyNotUsable"),
    ErrorKind.STALE_VERSION: Fault(_SENDER, "wsman:Concurrency"),
    ErrorKind.IN_USE: Fault(_SENDER, "wsman:Concurrency"),
    ErrorKind.ENCODING_LIMIT: Fault(_SENDER, "wsman:EncodingLimit"),
    ErrorKind.CREDENTIAL_REQUIRED: Fault(_SENDER, "wsman:AccessDenied"),
    ErrorKind.INVALID_CREDENTIALS: Fault(_SENDER, "wsman:AccessDenied"),
    ErrorKind.UNAUTHENTICATED: Fault(_SENDER, "wsman:AccessDenied"),
    ErrorKind.PERMISSION_DENIED: Fault(_SENDER, "wsman:AccessDenied"),
    ErrorKind.WRAPPING_REQUIRED: Fault(_SENDER, "kms:WrappingRequired"),
    ErrorKind.INVALID_SECURITY: Fault(_SENDER, "wsse:InvalidSecurity"),
    ErrorKind.SIGNATURE_INVALID: Fault(_SENDER, "wsse:FailedCheck"),
    ErrorKind.UNKNOWN_SIGNER: Fault(_SENDER, "wsse:SecurityTokenUnavailable"),
    ErrorKind.MESSAGE_EXPIRED: Fault(_SENDER, "wsse:MessageExpired"),
    ErrorKind.REPLAYED: Fault(_SENDER, "wsse:InvalidSecurity"),
    ErrorKind.QUOTA_EXCEEDED: Fault(_SENDER, "wsman:QuotaLimit"),
    ErrorKind.TIMED_OUT: Fault(_RECEIVER, "wsman:TimedOut"),
    ErrorKind.STORAGE_FULL: Fault(_RECEIVER, "wsa:EndpointUnavailable"),
    ErrorKind.ENDPOINT_UNREACHABLE: Fault(_RECEIVER, "wsman:InternalError"),
    ErrorKind.INTERNAL: Fault(_RECEIVER, "wsman:InternalError"),
}

# Classes whose fault is not their kind's: the protocol they belong to names its own
# subcode, or DSP0226 its own fault detail. A class's entry holds for its subclasses that
# declare no kind of their own.
CLASS_FAULTS: dict[type[KmsError], Fault] = {
    e.UnsupportedAuthenticationMode: Fault(_SENDER, "wsman:UnsupportedFeature",
                                           "AuthorizationMode"),
    e.UnsupportedEnumerationMode: Fault(_SENDER, "wsman:UnsupportedFeature",
                                        "EnumerationMode"),
    e.EnvelopeTooLarge: Fault(_SENDER, "wsman:EncodingLimit", "MaxEnvelopeSize"),
    e.NotifyToRefused: Fault(_SENDER, "wsman:InvalidParameter", "InvalidValue"),
    e.ActionNotSupported: Fault(_SENDER, "wsa:ActionNotSupported"),
    e.UnsupportedAlgorithm: Fault(_SENDER, "wsse:UnsupportedAlgorithm"),
    e.DestinationUnreachable: Fault(_SENDER, "wsa:DestinationUnreachable",
                                    "InvalidResourceURI"),
    e.InvalidEnumerationContext: Fault(_RECEIVER, "wsen:InvalidEnumerationContext"),
    e.EnumerationTimedOut: Fault(_RECEIVER, "wsen:TimedOut"),
    e.CannotProcessFilter: Fault(_SENDER, "wsen:CannotProcessFilter"),
    e.FilterDialectRequestedUnavailable: Fault(_SENDER,
                                               "wsen:FilterDialectRequestedUnavailable"),
    e.DeliveryModeRequestedUnavailable: Fault(_SENDER, "wse:DeliveryModeRequestedUnavailable"),
    e.EventingInvalidExpirationTime: Fault(_SENDER, "wse:InvalidExpirationTime"),
    e.InvalidSubscription: Fault(_SENDER, "wse:InvalidMessage"),
}

# DSP0226 fault details of InvalidSelectors, by what is wrong with the selectors.
SELECTOR_DETAILS: dict[SelectorProblem, str] = {
    SelectorProblem.MISSING: "InsufficientSelectors",
    SelectorProblem.DUPLICATE: "DuplicateSelectors",
    SelectorProblem.UNEXPECTED: "UnexpectedSelectors",
    SelectorProblem.INVALID_VALUE: "InvalidValue",
}


def fault_of(exc: KmsError) -> Fault:
    """The fault a domain error travels as."""
    for cls in type(exc).__mro__:
        if cls in CLASS_FAULTS:
            return CLASS_FAULTS[cls]
        if "kind" in vars(cls):
            break
    fault = FAULTS[exc.kind]
    if isinstance(exc, e.InvalidSelectors):
        return replace(fault, detail=SELECTOR_DETAILS[exc.problem])
    return fault


class SoapFault(Exception):
    """An envelope-level fault: Code MustUnderstand or VersionMismatch, no subcode.
    upgrade: the envelope versions supported, in order of preference, for the Upgrade
    header of a VersionMismatch (SOAP 1.2 Part 1 §5.4.7, Appendix A)."""

    def __init__(self, code: str, reason: str, not_understood: tuple[str, ...] = (),
                 upgrade: tuple[SoapVersion, ...] = ()) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason
        self.not_understood, self.upgrade = not_understood, upgrade


# The kinds that, on a request carrying no credential but perhaps HTTP Basic, mean HTTP
# authentication itself failed.
_HTTP_AUTH_FAILED = (ErrorKind.CREDENTIAL_REQUIRED, ErrorKind.INVALID_CREDENTIALS)


def http_status(exc: KmsError | SoapFault, http_auth: bool = False,
                version: SoapVersion = SOAP_12) -> int:
    """The HTTP status of a fault (see the module doc). http_auth: the request carries no
    credential but, perhaps, HTTP Basic."""
    if http_auth and isinstance(exc, KmsError) and exc.kind in _HTTP_AUTH_FAILED:
        return 401
    if version is SOAP_11:
        return 500
    code = exc.code if isinstance(exc, SoapFault) else fault_of(exc).code
    return 400 if code == _SENDER else 500


def fault_response(exc: Exception, addr: Addressing, request_id: str,
                   finish: envelope.Finish | None = None, http_auth: bool = False,
                   version: SoapVersion = SOAP_12) -> tuple[int, bytes]:
    """(HTTP status, fault envelope of `version`). http_auth: as for `http_status`."""
    if not isinstance(exc, (KmsError, SoapFault)):
        raise TypeError("fault_response takes KmsError or SoapFault") from exc
    status = http_status(exc, http_auth, version)
    env, header, body = envelope.new_envelope(version)
    s = f"{{{version.ns}}}"
    fault = etree.SubElement(body, s + "Fault")
    if isinstance(exc, SoapFault):
        if version is SOAP_11:
            _fault11(fault, "s:" + exc.code, exc.reason)
        else:
            _code(fault, "s:" + exc.code, None)
            _reason(fault, exc.reason)
            for i, qname in enumerate(exc.not_understood):
                ns, local = qname[1:].split("}", 1)
                nu = etree.SubElement(header, s + "NotUnderstood", nsmap={f"h{i}": ns})
                nu.set("qname", f"h{i}:{local}")
        if exc.upgrade:
            _upgrade(header, exc.upgrade)
        action = WSMAN_FAULT_ACTION
    else:
        shape = fault_of(exc)
        if version is SOAP_11:
            _fault11(fault, shape.subcode, exc.reason)
            _detail(etree.SubElement(fault, "detail"), exc, shape, request_id)
        else:
            _code(fault, "s:" + shape.code, shape.subcode)
            _reason(fault, exc.reason)
            _detail(etree.SubElement(fault, s + "Detail"), exc, shape, request_id)
        action = _FAULT_ACTIONS.get(shape.subcode.split(":", 1)[0], WSMAN_FAULT_ACTION)
    envelope.address(header, action, addr)
    return status, envelope.serialize(env, finish)


def fault_code_prefix(env: etree._Element) -> str | None:
    """The prefix of the QName a fault envelope carries as text (SOAP 1.2 Subcode, SOAP 1.1
    faultcode), whose declaration a signature must cover; None for other envelopes and
    for the envelope's own prefix (the Body's name uses it)."""
    ns = etree.QName(env).namespace
    fault = env.find(f"{{{ns}}}Body/{{{ns}}}Fault")
    if fault is None:
        return None
    qname = fault.findtext(f"{{{ns}}}Code/{{{ns}}}Subcode/{{{ns}}}Value") \
        if ns == SOAP else fault.findtext("faultcode")
    prefix = qname.split(":", 1)[0] if qname and ":" in qname else None
    return None if prefix == "s" else prefix


def _code(fault: etree._Element, code: str, subcode: str | None) -> None:
    c = etree.SubElement(fault, f"{{{SOAP}}}Code")
    etree.SubElement(c, f"{{{SOAP}}}Value").text = code
    if subcode:
        prefix = subcode.split(":", 1)[0]
        sub = etree.SubElement(c, f"{{{SOAP}}}Subcode", nsmap={prefix: PREFIXES[prefix]})
        etree.SubElement(sub, f"{{{SOAP}}}Value").text = subcode


def _reason(fault: etree._Element, text: str) -> None:
    r = etree.SubElement(fault, f"{{{SOAP}}}Reason")
    t = etree.SubElement(r, f"{{{SOAP}}}Text")
    t.set(f"{{{XML}}}lang", "en")
    t.text = text


def _fault11(fault: etree._Element, code: str, reason: str) -> None:
    """SOAP 1.1 faultcode (a QName, its prefix declared) and faultstring (unqualified)."""
    prefix = code.split(":", 1)[0]
    nsmap = {} if prefix == "s" else {prefix: PREFIXES[prefix]}
    etree.SubElement(fault, "faultcode", nsmap=nsmap).text = code
    etree.SubElement(fault, "faultstring").text = reason


def _upgrade(header: etree._Element, versions: tuple[SoapVersion, ...]) -> None:
    """SOAP 1.2 Part 1 §5.4.7: an env:Upgrade header block (in the SOAP 1.2 namespace, in
    a SOAP 1.1 envelope too) listing the supported envelopes in order of preference."""
    up = etree.SubElement(header, f"{{{SOAP}}}Upgrade",
                          nsmap={} if header.tag == f"{{{SOAP}}}Header" else {"upg": SOAP})
    for i, version in enumerate(versions):
        se = etree.SubElement(up, f"{{{SOAP}}}SupportedEnvelope", nsmap={f"ns{i}": version.ns})
        se.set("qname", f"ns{i}:Envelope")


def _detail(detail: etree._Element, exc: KmsError, shape: Fault, request_id: str) -> None:
    if shape.detail:
        fd = etree.SubElement(detail, f"{{{WSMAN}}}FaultDetail", nsmap={"wsman": WSMAN})
        fd.text = FAULT_DETAIL + shape.detail
    kf = etree.SubElement(detail, f"{{{KMS}}}KmsFault", nsmap={"kms": KMS})
    etree.SubElement(kf, f"{{{KMS}}}ErrorCode").text = exc.error_code
    etree.SubElement(kf, f"{{{KMS}}}RequestId").text = request_id
    for name in exc.supported:
        etree.SubElement(kf, f"{{{KMS}}}Supported").text = name
