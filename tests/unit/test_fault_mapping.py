"""Domain errors carry a kind, not a transport: kms_ws.soap.faults maps every kind (and
the classes that travel on a subcode of their own) to its SOAP fault and HTTP status,
and the wire each error makes is the one clients have always seen."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from lxml import etree

import kms_ws
from kms_ws.domain import errors as e
from kms_ws.domain.errors import ErrorKind, KmsError, SelectorProblem
from kms_ws.soap import faults
from kms_ws.soap.envelope import SOAP_11, SOAP_12
from kms_ws.wsman.addressing import Addressing
from kms_ws.xmlns import FAULT_DETAIL, KMS, SOAP, WSMAN

for _module in pkgutil.walk_packages(kms_ws.__path__, "kms_ws."):
    importlib.import_module(_module.name)  # every KmsError subclass, wherever declared


def _all_errors(cls: type[KmsError] = KmsError) -> list[type[KmsError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found += _all_errors(sub)
    return found


ERRORS = _all_errors()

# class: (SOAP 1.2 Code, Subcode, wsman:FaultDetail suffix, kms:ErrorCode) — the wire as
# it was when the errors still named their subcodes; it must not change.
WIRE: dict[str, tuple[str, str, str | None, str]] = {
    "KmsError": ("Sender", "wsman:InvalidParameter", None, "E_INVALID_PARAMETER"),
    "InvalidParameter": ("Sender", "wsman:InvalidParameter", None, "E_INVALID_PARAMETER"),
    "ValueTooLong": ("Sender", "wsman:InvalidParameter", None, "E_INVALID_PARAMETER"),
    "InvalidCredentials": ("Sender", "wsman:AccessDenied", None, "E_INVALID_CREDENTIALS"),
    "PasswordRefused": ("Sender", "wsman:AccessDenied", None, "E_INVALID_CREDENTIALS"),
    "UnsupportedAuthenticationMode": ("Sender", "wsman:UnsupportedFeature",
                                      "AuthorizationMode",
                                      "E_UNSUPPORTED_AUTHENTICATION_MODE"),
    "AccessDenied": ("Sender", "wsman:AccessDenied", None, "E_ACCESS_DENIED"),
    "CredentialRequired": ("Sender", "wsman:AccessDenied", None, "E_ACCESS_DENIED"),
    "PepProofRequired": ("Sender", "wsman:AccessDenied", None, "E_PEP_PROOF_REQUIRED"),
    "PermissionDenied": ("Sender", "wsman:AccessDenied", None, "E_PERMISSION_DENIED"),
    "AccessPolicyDenied": ("Sender", "wsman:AccessDenied", None, "E_ACCESS_POLICY"),
    "NotFound": ("Sender", "kms:NotFound", None, "E_NOT_FOUND"),
    "KeyNotFound": ("Sender", "kms:NotFound", None, "E_KEY_NOT_FOUND"),
    "AlreadyExists": ("Sender", "wsman:AlreadyExists", None, "E_ALREADY_EXISTS"),
    "AmbiguousReference": ("Sender", "kms:AmbiguousReference", None, "E_AMBIGUOUS_REFERENCE"),
    "KeyNotUsable": ("Sender", "kms:KeyNotUsable", None, "E_KEY_STATE"),
    "SchemaValidationError": ("Sender", "wsman:SchemaValidationError", None,
                              "E_SCHEMA_VALIDATION"),
    "ActionNotSupported": ("Sender", "wsa:ActionNotSupported", None, "E_ACTION_NOT_SUPPORTED"),
    "DuplicateHeader": ("Sender", "wsa:InvalidMessageInformationHeader", None,
                        "E_DUPLICATE_HEADER"),
    "ActionMismatch": ("Sender", "wsa:InvalidMessageInformationHeader", None,
                       "E_ACTION_MISMATCH"),
    "EncodingLimit": ("Sender", "wsman:EncodingLimit", None, "E_ENCODING_LIMIT"),
    "EnvelopeTooLarge": ("Sender", "wsman:EncodingLimit", "MaxEnvelopeSize",
                         "E_ENCODING_LIMIT"),
    "MessageSecurityError": ("Sender", "wsse:InvalidSecurity", None, "E_INVALID_SECURITY"),
    "UnsupportedAlgorithm": ("Sender", "wsse:UnsupportedAlgorithm", None,
                             "E_UNSUPPORTED_ALGORITHM"),
    "SignatureInvalid": ("Sender", "wsse:FailedCheck", None, "E_SIGNATURE_INVALID"),
    "UnknownSigner": ("Sender", "wsse:SecurityTokenUnavailable", None,
                      "E_INVALID_CREDENTIALS"),
    "MessageExpired": ("Sender", "wsse:MessageExpired", None, "E_MESSAGE_EXPIRED"),
    "ReplayedMessage": ("Sender", "wsse:InvalidSecurity", None, "E_REPLAY"),
    "InternalError": ("Receiver", "wsman:InternalError", None, "E_INTERNAL"),
    "AuditQuotaExceeded": ("Sender", "wsman:QuotaLimit", None, "E_AUDIT_QUOTA_EXCEEDED"),
    "StorageFull": ("Receiver", "wsa:EndpointUnavailable", None, "E_STORAGE_FULL"),
    "StaleVersion": ("Sender", "wsman:Concurrency", None, "E_STALE_VERSION"),
    "InUse": ("Sender", "wsman:Concurrency", None, "E_OBJECT_IN_USE"),
    "WrappingUnavailable": ("Sender", "wsman:UnsupportedFeature", None,
                            "E_WRAPPING_UNAVAILABLE"),
    "UnsupportedEnumerationMode": ("Sender", "wsman:UnsupportedFeature", "EnumerationMode",
                                   "E_UNSUPPORTED_ENUMERATION_MODE"),
    "InvalidSelectors": ("Sender", "wsman:InvalidSelectors", "InsufficientSelectors",
                         "E_INVALID_SELECTORS"),
    "DestinationUnreachable": ("Sender", "wsa:DestinationUnreachable", "InvalidResourceURI",
                               "E_INVALID_RESOURCE_URI"),
    "OperationTimedOut": ("Receiver", "wsman:TimedOut", None, "E_TIMED_OUT"),
    "InvalidEnumerationContext": ("Receiver", "wsen:InvalidEnumerationContext", None,
                                  "E_INVALID_ENUMERATION_CONTEXT"),
    "EnumerationTimedOut": ("Receiver", "wsen:TimedOut", None, "E_TIMED_OUT"),
    "CannotProcessFilter": ("Sender", "wsen:CannotProcessFilter", None,
                            "E_CANNOT_PROCESS_FILTER"),
    "ResyncRequired": ("Sender", "wsen:CannotProcessFilter", None, "E_RESYNC_REQUIRED"),
    "FilterDialectRequestedUnavailable": ("Sender", "wsen:FilterDialectRequestedUnavailable",
                                          None, "E_FILTER_DIALECT_UNAVAILABLE"),
    "InvalidExpirationTime": ("Sender", "wsen:InvalidExpirationTime", None,
                              "E_INVALID_EXPIRATION_TIME"),
    "DeliveryModeRequestedUnavailable": ("Sender", "wse:DeliveryModeRequestedUnavailable",
                                         None, "E_DELIVERY_MODE_UNAVAILABLE"),
    "EventingInvalidExpirationTime": ("Sender", "wse:InvalidExpirationTime", None,
                                      "E_INVALID_EXPIRATION_TIME"),
    "NotifyToRefused": ("Sender", "wsman:InvalidParameter", "InvalidValue",
                        "E_NOTIFY_TO_REFUSED"),
    "InvalidSubscription": ("Sender", "wse:InvalidMessage", None, "E_INVALID_SUBSCRIPTION"),
    "EndpointUnreachable": ("Receiver", "wsman:InternalError", None, "E_ENDPOINT_UNREACHABLE"),
    "UnsupportedWrapping": ("Sender", "wsman:UnsupportedFeature", None,
                            "E_UNSUPPORTED_WRAPPING"),
    "WrappingRequired": ("Sender", "kms:WrappingRequired", None, "E_WRAPPING_REQUIRED"),
    "UnwrapFailed": ("Sender", "wsman:InvalidParameter", None, "E_UNWRAP_FAILED"),
}


def _instance(cls: type[KmsError]) -> KmsError:
    if issubclass(cls, e.PasswordRefused):
        return cls("wrong password", "alice")
    return cls("reason text")


def _wire(env: etree._Element) -> tuple[str, str, str | None, str]:
    ns = {"s": SOAP, "wsman": WSMAN, "kms": KMS}
    fault = env.find("s:Body/s:Fault", ns)
    assert fault is not None
    detail = fault.findtext("s:Detail/wsman:FaultDetail", namespaces=ns)
    assert detail is None or detail.startswith(FAULT_DETAIL)
    return (fault.findtext("s:Code/s:Value", namespaces=ns).removeprefix("s:"),
            fault.findtext("s:Code/s:Subcode/s:Value", namespaces=ns),
            detail.removeprefix(FAULT_DETAIL) if detail else None,
            fault.findtext("s:Detail/kms:KmsFault/kms:ErrorCode", namespaces=ns))


def test_every_kind_has_a_fault() -> None:
    assert set(faults.FAULTS) == set(ErrorKind)
    assert set(faults.SELECTOR_DETAILS) == set(SelectorProblem)


def test_every_error_class_is_pinned_to_its_wire() -> None:
    assert sorted(cls.__name__ for cls in ERRORS) == sorted(WIRE)


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_each_error_makes_the_fault_it_always_made(cls: type[KmsError]) -> None:
    exc = _instance(cls)
    status, body = faults.fault_response(exc, Addressing(), "req-1")
    code, subcode, detail, error_code = WIRE[cls.__name__]
    assert _wire(etree.fromstring(body)) == (code, subcode, detail, error_code)
    assert status == (400 if code == "Sender" else 500)  # SOAP 1.2 HTTP binding
    status11, body11 = faults.fault_response(exc, Addressing(), "req-1", version=SOAP_11)
    assert status11 == 500
    assert etree.fromstring(body11).findtext(f"{{{SOAP_11.ns}}}Body/{{{SOAP_11.ns}}}Fault/"
                                             "faultcode") == subcode


@pytest.mark.parametrize(("problem", "detail"), [
    (SelectorProblem.MISSING, "InsufficientSelectors"),
    (SelectorProblem.DUPLICATE, "DuplicateSelectors"),
    (SelectorProblem.UNEXPECTED, "UnexpectedSelectors"),
    (SelectorProblem.INVALID_VALUE, "InvalidValue"),
])
def test_selector_problems_name_their_dsp0226_fault_detail(problem: SelectorProblem,
                                                           detail: str) -> None:
    _, body = faults.fault_response(e.InvalidSelectors("bad", problem), Addressing(), "r")
    assert _wire(etree.fromstring(body))[1:3] == ("wsman:InvalidSelectors", detail)


def test_only_failed_http_authentication_answers_401() -> None:
    """With nothing but (perhaps) HTTP Basic on the request, a missing or wrong credential
    is an HTTP authentication failure; every other refusal keeps the SOAP binding's
    status."""
    challenged = {cls.__name__ for cls in ERRORS
                  if faults.http_status(_instance(cls), http_auth=True, version=SOAP_12) == 401}
    assert challenged == {"CredentialRequired", "InvalidCredentials", "PasswordRefused"}
    assert faults.http_status(e.CredentialRequired("none"), http_auth=False) == 400
