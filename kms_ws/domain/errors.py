"""Domain errors. Each carries its kind (what went wrong, in the domain's terms), the
P1619.3 error code carried in the fault detail, and whether it refuses the caller
(authentication, rights, policy: audited as "Denied"). How an error travels — the SOAP
fault code and subcode, the WS-Management fault detail, the HTTP status — is the
transport's business: the one fault mapper, kms_ws.soap.faults, maps each kind (and the
few classes one kind carries on several subcodes) to its fault."""

from __future__ import annotations

import enum


class ErrorKind(enum.Enum):
    """What went wrong. Every kind has a fault in kms_ws.soap.faults."""

    INVALID_PARAMETER = "invalid-parameter"  # a valid request asking for the impossible
    INVALID_MESSAGE = "invalid-message"  # the request is not valid against the schemas
    INVALID_HEADER = "invalid-header"  # a header block repeated, or contradicting another
    INVALID_SELECTORS = "invalid-selectors"  # the object's name is missing or malformed
    INVALID_EXPIRATION = "invalid-expiration"  # an expiry in the past or beyond the limit
    NOT_SUPPORTED = "not-supported"  # a mode, algorithm, wrapping or action not served
    NOT_FOUND = "not-found"  # no such object (or none the caller may know of)
    ALREADY_EXISTS = "already-exists"
    AMBIGUOUS_REFERENCE = "ambiguous-reference"  # a name that fits several objects
    WRONG_STATE = "wrong-state"  # the object's state forbids the use
    STALE_VERSION = "stale-version"  # an edit of a version that is no longer current
    IN_USE = "in-use"  # still referenced: cannot be removed
    ENCODING_LIMIT = "encoding-limit"  # a message or answer larger than allowed
    CREDENTIAL_REQUIRED = "credential-required"  # no credential this service accepts
    INVALID_CREDENTIALS = "invalid-credentials"  # a credential that does not authenticate
    UNAUTHENTICATED = "unauthenticated"  # not authenticated the way this request needs
    PERMISSION_DENIED = "permission-denied"  # authenticated, without the right
    WRAPPING_REQUIRED = "wrapping-required"  # a key that may not travel unwrapped
    INVALID_SECURITY = "invalid-security"  # a malformed or wrapped message signature
    SIGNATURE_INVALID = "signature-invalid"  # a signature or proof that does not verify
    UNKNOWN_SIGNER = "unknown-signer"  # a signing key that is not registered
    MESSAGE_EXPIRED = "message-expired"  # a signed message outside its validity
    REPLAYED = "replayed"  # a signed message or proof seen before
    QUOTA_EXCEEDED = "quota-exceeded"
    TIMED_OUT = "timed-out"
    STORAGE_FULL = "storage-full"
    ENDPOINT_UNREACHABLE = "endpoint-unreachable"  # a client endpoint the server calls
    INTERNAL = "internal"


class SelectorProblem(enum.Enum):
    """What is wrong with the selectors naming an object (InvalidSelectors)."""

    MISSING = "missing"
    DUPLICATE = "duplicate"
    UNEXPECTED = "unexpected"
    INVALID_VALUE = "invalid-value"


class KmsError(Exception):
    kind = ErrorKind.INVALID_PARAMETER
    error_code = "E_INVALID_PARAMETER"
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
    kind = ErrorKind.INVALID_CREDENTIALS
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
    kind = ErrorKind.NOT_SUPPORTED
    error_code = "E_UNSUPPORTED_AUTHENTICATION_MODE"


class AccessDenied(KmsError):
    """No credential, or one that does not authenticate."""

    kind = ErrorKind.UNAUTHENTICATED
    error_code = "E_ACCESS_DENIED"
    refusal = True


class CredentialRequired(AccessDenied):
    """The request presents no credential this service accepts (none at all, or an HTTP
    Authorization of another scheme than Basic)."""

    kind = ErrorKind.CREDENTIAL_REQUIRED


class PepProofRequired(AccessDenied):
    """§4.6: the PEP's AUTHENTICATION_POLICY asks for its own proof (kms:PepCredential) on
    every request a client makes for it, and the request carries none."""

    error_code = "E_PEP_PROOF_REQUIRED"


class PermissionDenied(KmsError):
    """An authenticated caller without the right for this object or operation."""

    kind = ErrorKind.PERMISSION_DENIED
    error_code = "E_PERMISSION_DENIED"
    refusal = True


class NotFound(KmsError):
    kind = ErrorKind.NOT_FOUND
    error_code = "E_NOT_FOUND"


class KeyNotFound(NotFound):
    error_code = "E_KEY_NOT_FOUND"


class AlreadyExists(KmsError):
    kind = ErrorKind.ALREADY_EXISTS
    error_code = "E_ALREADY_EXISTS"


class AmbiguousReference(KmsError):
    kind = ErrorKind.AMBIGUOUS_REFERENCE
    error_code = "E_AMBIGUOUS_REFERENCE"


class KeyNotUsable(KmsError):
    """The key exists but its state forbids the requested use."""

    kind = ErrorKind.WRONG_STATE
    error_code = "E_KEY_STATE"


class SchemaValidationError(KmsError):
    kind = ErrorKind.INVALID_MESSAGE
    error_code = "E_SCHEMA_VALIDATION"


class ActionNotSupported(KmsError):
    kind = ErrorKind.NOT_SUPPORTED
    error_code = "E_ACTION_NOT_SUPPORTED"


class DuplicateHeader(KmsError):
    """A SOAP header block the receiver acts on (wsa:Action, wsman:SelectorSet, ...)
    given more than once: which one was meant is not for the receiver to guess."""

    kind = ErrorKind.INVALID_HEADER
    error_code = "E_DUPLICATE_HEADER"


class ActionMismatch(KmsError):
    """The action the transport names (SOAP 1.1 SOAPAction, the SOAP 1.2 Content-Type
    action) and wsa:Action name different operations."""

    kind = ErrorKind.INVALID_HEADER
    error_code = "E_ACTION_MISMATCH"


class EncodingLimit(KmsError):
    kind = ErrorKind.ENCODING_LIMIT
    error_code = "E_ENCODING_LIMIT"


class MessageSecurityError(KmsError):
    """A WS-Security header that is malformed or shaped in a way we do not accept
    (wrong positions, duplicate ids, unexpected references: signature wrapping)."""

    kind = ErrorKind.INVALID_SECURITY
    error_code = "E_INVALID_SECURITY"


class UnsupportedAlgorithm(MessageSecurityError):
    kind = ErrorKind.NOT_SUPPORTED
    error_code = "E_UNSUPPORTED_ALGORITHM"


class SignatureInvalid(KmsError):
    """The signature does not verify, or its key is not registered."""

    kind = ErrorKind.SIGNATURE_INVALID
    error_code = "E_SIGNATURE_INVALID"
    refusal = True


class UnknownSigner(SignatureInvalid):
    kind = ErrorKind.UNKNOWN_SIGNER
    error_code = "E_INVALID_CREDENTIALS"


class MessageExpired(KmsError):
    kind = ErrorKind.MESSAGE_EXPIRED
    error_code = "E_MESSAGE_EXPIRED"
    refusal = True


class ReplayedMessage(KmsError):
    """A signed message seen before (same signer, same signed content)."""

    kind = ErrorKind.REPLAYED
    error_code = "E_REPLAY"
    refusal = True


class InternalError(KmsError):
    kind = ErrorKind.INTERNAL
    error_code = "E_INTERNAL"


class AuditQuotaExceeded(KmsError):
    """A client pushed more audit messages (or bytes of them) than its per-minute quota
    (§6.8 PushAuditMessage; SecuritySettings.push_audit_*_per_minute). Nothing of the
    call is stored. `window` is the start of the quota minute it fell in."""

    kind = ErrorKind.QUOTA_EXCEEDED
    error_code = "E_AUDIT_QUOTA_EXCEEDED"
    refusal = True

    def __init__(self, reason: str, window: object = None) -> None:
        super().__init__(reason)
        self.window = window


class StorageFull(KmsError):
    """The server's storage is below its free-space watermark, or full (the database or
    the log reported it): changes are refused, reads that need no new record still work."""

    kind = ErrorKind.STORAGE_FULL
    error_code = "E_STORAGE_FULL"


class StaleVersion(KmsError):
    """An edit or delete that names a VERSION other than the object's current one."""

    kind = ErrorKind.STALE_VERSION
    error_code = "E_STALE_VERSION"


class InUse(KmsError):
    """The object is still referenced and cannot be removed."""

    kind = ErrorKind.IN_USE
    error_code = "E_OBJECT_IN_USE"


class WrappingUnavailable(KmsError):
    """A wrapping policy applies to the delivery, but the wrapping cannot be made."""

    kind = ErrorKind.NOT_SUPPORTED
    error_code = "E_WRAPPING_UNAVAILABLE"


# ---- WS-Management (DSP0226) and the WS-* protocols it composes ---------------------------

class UnsupportedEnumerationMode(KmsError):
    """A wsman:EnumerationMode other than EnumerateEPR / EnumerateObjectAndEPR."""

    kind = ErrorKind.NOT_SUPPORTED
    error_code = "E_UNSUPPORTED_ENUMERATION_MODE"


class InvalidSelectors(KmsError):
    """A SelectorSet that is missing, has unknown or duplicate names, or a bad value."""

    kind = ErrorKind.INVALID_SELECTORS
    error_code = "E_INVALID_SELECTORS"

    def __init__(self, reason: str, problem: SelectorProblem = SelectorProblem.MISSING) -> None:
        super().__init__(reason)
        self.problem = problem


class DestinationUnreachable(KmsError):
    """The ResourceURI names no resource this service has."""

    kind = ErrorKind.NOT_FOUND
    error_code = "E_INVALID_RESOURCE_URI"


class OperationTimedOut(KmsError):
    """wsman:OperationTimeout elapsed before the operation completed."""

    kind = ErrorKind.TIMED_OUT
    error_code = "E_TIMED_OUT"


class EnvelopeTooLarge(EncodingLimit):
    """The response would exceed the wsman:MaxEnvelopeSize the client asked for."""



class InvalidEnumerationContext(KmsError):
    kind = ErrorKind.NOT_FOUND
    error_code = "E_INVALID_ENUMERATION_CONTEXT"


class EnumerationTimedOut(KmsError):
    """No item could be produced within the Pull's MaxTime."""

    kind = ErrorKind.TIMED_OUT
    error_code = "E_TIMED_OUT"


class CannotProcessFilter(KmsError):
    kind = ErrorKind.INVALID_PARAMETER
    error_code = "E_CANNOT_PROCESS_FILTER"


class ResyncRequired(CannotProcessFilter):
    """GetUpdateList from a token older than the removals the server keeps: the list
    could miss one. The client lists again from token 0 (everything) and replaces what it
    holds."""

    error_code = "E_RESYNC_REQUIRED"


class FilterDialectRequestedUnavailable(KmsError):
    kind = ErrorKind.NOT_SUPPORTED
    error_code = "E_FILTER_DIALECT_UNAVAILABLE"


class InvalidExpirationTime(KmsError):
    kind = ErrorKind.INVALID_EXPIRATION
    error_code = "E_INVALID_EXPIRATION_TIME"


class DeliveryModeRequestedUnavailable(KmsError):
    kind = ErrorKind.NOT_SUPPORTED
    error_code = "E_DELIVERY_MODE_UNAVAILABLE"


class EventingInvalidExpirationTime(KmsError):
    kind = ErrorKind.INVALID_EXPIRATION
    error_code = "E_INVALID_EXPIRATION_TIME"


class NotifyToRefused(KmsError):
    """A NotifyTo address the server will not call: neither the subscriber's own address
    nor in SecuritySettings.notify_to_networks (protects internal services from being
    reached through the server)."""

    kind = ErrorKind.INVALID_PARAMETER
    error_code = "E_NOTIFY_TO_REFUSED"


class InvalidSubscription(KmsError):
    """Renew/Unsubscribe of a subscription that does not exist, expired or is not yours."""

    kind = ErrorKind.NOT_FOUND
    error_code = "E_INVALID_SUBSCRIPTION"


class EndpointUnreachable(KmsError):
    """A server-initiated call (GetStatus) to a client endpoint failed."""

    kind = ErrorKind.ENDPOINT_UNREACHABLE
    error_code = "E_ENDPOINT_UNREACHABLE"



class UnsupportedWrapping(KmsError):
    """A WrappingType the server does not support, or cannot serve this caller with
    (no fitting wrapping key). `supported` lists what it can serve."""

    kind = ErrorKind.NOT_SUPPORTED
    error_code = "E_UNSUPPORTED_WRAPPING"


class WrappingRequired(KmsError):
    """An unwrapped delivery that is not allowed: never falls back to plaintext."""

    kind = ErrorKind.WRAPPING_REQUIRED
    error_code = "E_WRAPPING_REQUIRED"
    refusal = True


class UnwrapFailed(KmsError):
    """A wrapped KeyBlob sent to the server does not open: wrong KEK or corrupted."""

    kind = ErrorKind.INVALID_PARAMETER
    error_code = "E_UNWRAP_FAILED"
