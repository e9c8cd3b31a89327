"""Domain errors. Each declares the SOAP fault it becomes (code, subcode, HTTP status),
the P1619.3 error code carried in the fault detail, and optionally a DSP0226 fault
detail URI suffix. The one fault mapper (kms_ws.soap.faults) reads these attributes."""

from __future__ import annotations


class KmsError(Exception):
    code = "Sender"  # SOAP 1.2 Code/Value: Sender | Receiver
    subcode = "wsman:InvalidParameter"
    http_status = 400
    error_code = "E_INVALID_PARAMETER"
    fault_detail: str | None = None

    def __init__(self, reason: str, *, supported: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.supported = supported


class InvalidParameter(KmsError):
    """A request that is well-formed and valid but asks for something impossible."""


class InvalidCredentials(KmsError):
    subcode = "wsman:AccessDenied"
    http_status = 401
    error_code = "E_INVALID_CREDENTIALS"


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


class PermissionDenied(KmsError):
    """An authenticated caller without the right for this object or operation."""

    subcode = "wsman:AccessDenied"
    http_status = 403
    error_code = "E_PERMISSION_DENIED"


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


class UnknownSigner(SignatureInvalid):
    subcode = "wsse:SecurityTokenUnavailable"
    error_code = "E_INVALID_CREDENTIALS"


class MessageExpired(KmsError):
    subcode = "wsse:MessageExpired"
    http_status = 401
    error_code = "E_MESSAGE_EXPIRED"


class ReplayedMessage(KmsError):
    """A signed message seen before (same signer, same signed content)."""

    subcode = "wsse:InvalidSecurity"
    http_status = 409
    error_code = "E_REPLAY"


class InternalError(KmsError):
    code = "Receiver"
    subcode = "wsman:InternalError"
    http_status = 500
    error_code = "E_INTERNAL"


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
