"""Domain errors. Each declares the SOAP fault it becomes (code, subcode), the P1619.3
error code carried in the fault detail, optionally a DSP0226 fault detail URI suffix, and
whether it refuses the caller (authentication, rights, policy: audited as "Denied"). The
one fault mapper (kms_ws.soap.faults) reads these attributes and derives the HTTP status
from the SOAP code, as the SOAP HTTP bindings say; `http_status` is no longer read (a
later change removes it)."""

from __future__ import annotations


class KmsError(Exception):
    code = "Sender"  # SOAP 1.2 Code/Value: Sender | Receiver
    subcode = "wsman:InvalidParameter"
    http_status = 400
    error_code = "E_INVALID_PARAMETER"
    fault_detail: str | None = None
    refusal = False  # the caller is refused (not a failure of the request): "Denied"

    def __init__(self, reason: str, *, supported: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.supported = supported


class InvalidParameter(KmsError):
    """A request that is well-formed and valid but asks for something impossible."""


class ValueTooLong(InvalidParameter):
    """A value longer than the store keeps for its field (refused before the store)."""


class InvalidCredentials(KmsError):
    subcode = "wsman:AccessDenied"
    http_status = 401
    error_code = "E_INVALID_CREDENTIALS"
    refusal = True


class PasswordRefused(InvalidCredentials):
    """A user name and password that do not authenticate. Whoever sent them learns only
    that (one reason for every case); `why` is for the audit trail and the counts:
    "unknown user", "wrong password", "client locked", "client disabled" (the password
    was not checked), or "backoff" (refused unchecked while the name or source is
    barred, domain.backoff)."""

    REASON = "unknown user name or wrong password"

    def __init__(self, why: str, username: str, endpoint_id: str | None = None) -> None:
        super().__init__(self.REASON)
        self.why = why
        self.username = username
        self.endpoint_id = endpoint_id

    @property
    def counted(self) -> bool:
        """A failure the backoff counts: all but a refusal in backoff itself."""
        return self.why != "backoff"


class UnsupportedAuthenticationMode(KmsError):
    subcode = "wsman:UnsupportedFeature"
    http_status = 400
    error_code = "E_UNSUPPORTED_AUTHENTICATION_MODE"
    fault_detail = "AuthorizationMode"


class AccessDenied(KmsError):
    """No credential, or one that does not authenticate."""

    subcode = "wsman:AccessDenied"
    http_status = 401
    error_code = "E_ACCESS_DENIED"
    refusal = True


class CredentialRequired(AccessDenied):
    """The request presents no credential this service accepts (none at all, or an HTTP
    Authorization of another scheme than Basic)."""


class PepProofRequired(AccessDenied):
    """§4.6: the PEP's AUTHENTICATION_POLICY asks for its own proof (kms:PepCredential) on
    every request a client makes for it, and the request carries none."""

    error_code = "E_PEP_PROOF_REQUIRED"


class PermissionDenied(KmsError):
    """An authenticated caller without the right for this object or operation."""

    subcode = "wsman:AccessDenied"
    http_status = 403
    error_code = "E_PERMISSION_DENIED"
    refusal = True


class NotFound(KmsError):
    subcode = "kms:NotFound"
    http_status = 404
    error_code = "E_NOT_FOUND"


class KeyNotFound(NotFound):
    error_code = "E_KEY_NOT_FOUND"


class AlreadyExists(KmsError):
    subcode = "wsman:AlreadyExists"
    http_status = 409
    error_code = "E_ALREADY_EXISTS"


class AmbiguousReference(KmsError):
    subcode = "kms:AmbiguousReference"
    http_status = 409
    error_code = "E_AMBIGUOUS_REFERENCE"


class KeyNotUsable(KmsError):
    """The key exists but its state forbids the requested use."""

    subcode = "kms:KeyNotUsable"
    http_status = 409
    error_code = "E_KEY_STATE"


class SchemaValidationError(KmsError):
    subcode = "wsman:SchemaValidationError"
    http_status = 400
    error_code = "E_SCHEMA_VALIDATION"


class ActionNotSupported(KmsError):
    subcode = "wsa:ActionNotSupported"
    http_status = 501
    error_code = "E_ACTION_NOT_SUPPORTED"


class DuplicateHeader(KmsError):
    """A SOAP header block the receiver acts on (wsa:Action, wsman:SelectorSet, ...)
    given more than once: which one was meant is not for the receiver to guess."""

    subcode = "wsa:InvalidMessageInformationHeader"
    http_status = 400
    error_code = "E_DUPLICATE_HEADER"


class ActionMismatch(KmsError):
    """The action the transport names (SOAP 1.1 SOAPAction, the SOAP 1.2 Content-Type
    action) and wsa:Action name different operations."""

    subcode = "wsa:InvalidMessageInformationHeader"
    error_code = "E_ACTION_MISMATCH"


class EncodingLimit(KmsError):
    subcode = "wsman:EncodingLimit"
    http_status = 413
    error_code = "E_ENCODING_LIMIT"


class MessageSecurityError(KmsError):
    """A WS-Security header that is malformed or shaped in a way we do not accept
    (wrong positions, duplicate ids, unexpected references: signature wrapping)."""

    subcode = "wsse:InvalidSecurity"
    http_status = 400
    error_code = "E_INVALID_SECURITY"


class UnsupportedAlgorithm(MessageSecurityError):
    subcode = "wsse:UnsupportedAlgorithm"
    error_code = "E_UNSUPPORTED_ALGORITHM"


class SignatureInvalid(KmsError):
    """The signature does not verify, or its key is not registered."""

    subcode = "wsse:FailedCheck"
    http_status = 401
    error_code = "E_SIGNATURE_INVALID"
    refusal = True


class UnknownSigner(SignatureInvalid):
    subcode = "wsse:SecurityTokenUnavailable"
    error_code = "E_INVALID_CREDENTIALS"


class MessageExpired(KmsError):
    subcode = "wsse:MessageExpired"
    http_status = 401
    error_code = "E_MESSAGE_EXPIRED"
    refusal = True


class ReplayedMessage(KmsError):
    """A signed message seen before (same signer, same signed content)."""

    subcode = "wsse:InvalidSecurity"
    http_status = 409
    error_code = "E_REPLAY"
    refusal = True


class InternalError(KmsError):
    code = "Receiver"
    subcode = "wsman:InternalError"
    http_status = 500
    error_code = "E_INTERNAL"


class AuditQuotaExceeded(KmsError):
    """A client pushed more audit messages (or bytes of them) than its per-minute quota
    (§6.8 PushAuditMessage; SecuritySettings.push_audit_*_per_minute). Nothing of the
    call is stored. `window` is the start of the quota minute it fell in."""

    subcode = "wsman:QuotaLimit"
    http_status = 400
    error_code = "E_AUDIT_QUOTA_EXCEEDED"
    refusal = True

    def __init__(self, reason: str, window: object = None) -> None:
        super().__init__(reason)
        self.window = window


class StorageFull(KmsError):
    """The server's storage is below its free-space watermark, or full (the database or
    the log reported it): changes are refused, reads that need no new record still work."""

    code = "Receiver"
    subcode = "wsa:EndpointUnavailable"
    http_status = 500
    error_code = "E_STORAGE_FULL"


class StaleVersion(KmsError):
    """An edit or delete that names a VERSION other than the object's current one."""

    subcode = "wsman:Concurrency"
    http_status = 409
    error_code = "E_STALE_VERSION"


class InUse(KmsError):
    """The object is still referenced and cannot be removed."""

    subcode = "wsman:Concurrency"
    http_status = 409
    error_code = "E_OBJECT_IN_USE"


class WrappingUnavailable(KmsError):
    """A wrapping policy applies to the delivery, but the wrapping cannot be made."""

    subcode = "wsman:UnsupportedFeature"
    http_status = 409
    error_code = "E_WRAPPING_UNAVAILABLE"


# ---- WS-Management (DSP0226) and the WS-* protocols it composes ---------------------------

class UnsupportedEnumerationMode(KmsError):
    """A wsman:EnumerationMode other than EnumerateEPR / EnumerateObjectAndEPR."""

    subcode = "wsman:UnsupportedFeature"
    http_status = 400
    error_code = "E_UNSUPPORTED_ENUMERATION_MODE"
    fault_detail = "EnumerationMode"


class InvalidSelectors(KmsError):
    """A SelectorSet that is missing, has unknown or duplicate names, or a bad value."""

    subcode = "wsman:InvalidSelectors"
    http_status = 400
    error_code = "E_INVALID_SELECTORS"
    fault_detail = "InsufficientSelectors"

    def __init__(self, reason: str, detail: str = "InsufficientSelectors") -> None:
        super().__init__(reason)
        self.fault_detail = detail


class DestinationUnreachable(KmsError):
    """The ResourceURI names no resource this service has."""

    subcode = "wsa:DestinationUnreachable"
    http_status = 503
    error_code = "E_INVALID_RESOURCE_URI"
    fault_detail = "InvalidResourceURI"


class OperationTimedOut(KmsError):
    """wsman:OperationTimeout elapsed before the operation completed."""

    code = "Receiver"
    subcode = "wsman:TimedOut"
    http_status = 500
    error_code = "E_TIMED_OUT"


class EnvelopeTooLarge(EncodingLimit):
    """The response would exceed the wsman:MaxEnvelopeSize the client asked for."""

    fault_detail = "MaxEnvelopeSize"


class InvalidEnumerationContext(KmsError):
    code = "Receiver"
    subcode = "wsen:InvalidEnumerationContext"
    http_status = 400
    error_code = "E_INVALID_ENUMERATION_CONTEXT"


class EnumerationTimedOut(KmsError):
    """No item could be produced within the Pull's MaxTime."""

    code = "Receiver"
    subcode = "wsen:TimedOut"
    http_status = 400
    error_code = "E_TIMED_OUT"


class CannotProcessFilter(KmsError):
    subcode = "wsen:CannotProcessFilter"
    http_status = 400
    error_code = "E_CANNOT_PROCESS_FILTER"


class FilterDialectRequestedUnavailable(KmsError):
    subcode = "wsen:FilterDialectRequestedUnavailable"
    http_status = 400
    error_code = "E_FILTER_DIALECT_UNAVAILABLE"


class InvalidExpirationTime(KmsError):
    subcode = "wsen:InvalidExpirationTime"
    http_status = 400
    error_code = "E_INVALID_EXPIRATION_TIME"


class DeliveryModeRequestedUnavailable(KmsError):
    subcode = "wse:DeliveryModeRequestedUnavailable"
    http_status = 400
    error_code = "E_DELIVERY_MODE_UNAVAILABLE"


class EventingInvalidExpirationTime(KmsError):
    subcode = "wse:InvalidExpirationTime"
    http_status = 400
    error_code = "E_INVALID_EXPIRATION_TIME"


class NotifyToRefused(KmsError):
    """A NotifyTo address the server will not call: neither the subscriber's own address
    nor in SecuritySettings.notify_to_networks (protects internal services from being
    reached through the server)."""

    subcode = "wsman:InvalidParameter"
    http_status = 400
    error_code = "E_NOTIFY_TO_REFUSED"
    fault_detail = "InvalidValue"


class InvalidSubscription(KmsError):
    """Renew/Unsubscribe of a subscription that does not exist, expired or is not yours."""

    subcode = "wse:InvalidMessage"
    http_status = 400
    error_code = "E_INVALID_SUBSCRIPTION"


class EndpointUnreachable(KmsError):
    """A server-initiated call (GetStatus) to a client endpoint failed."""

    code = "Receiver"
    subcode = "wsman:InternalError"
    http_status = 502
    error_code = "E_ENDPOINT_UNREACHABLE"



class UnsupportedWrapping(KmsError):
    """A WrappingType the server does not support, or cannot serve this caller with
    (no fitting wrapping key). `supported` lists what it can serve."""

    subcode = "wsman:UnsupportedFeature"
    http_status = 400
    error_code = "E_UNSUPPORTED_WRAPPING"


class WrappingRequired(KmsError):
    """An unwrapped delivery that is not allowed: never falls back to plaintext."""

    subcode = "kms:WrappingRequired"
    http_status = 403
    error_code = "E_WRAPPING_REQUIRED"
    refusal = True


class UnwrapFailed(KmsError):
    """A wrapped KeyBlob sent to the server does not open: wrong KEK or corrupted."""

    subcode = "wsman:InvalidParameter"
    http_status = 400
    error_code = "E_UNWRAP_FAILED"
