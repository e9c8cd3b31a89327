"""§4 objects as plain dataclasses."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .realms import ALL_RIGHTS, Right

if TYPE_CHECKING:
    from .wrapping import KeyBlob


class KeyState(str, enum.Enum):  # noqa: UP042 - StrEnum would change str() and f"{}" of every member
    PRE_ACTIVE = "PreActive"
    ACTIVE = "Active"
    EXPIRED = "Expired"
    DISABLED = "Disabled"
    COMPROMISED = "Compromised"
    DESTROYED = "Destroyed"


class KeyUsage(str, enum.Enum):  # noqa: UP042 - StrEnum would change str() and f"{}" of every member
    ENCRYPT = "Encrypt"
    DECRYPT = "Decrypt"


class EndpointKind(str, enum.Enum):  # noqa: UP042 - StrEnum would change str() and f"{}" of every member
    CLIENT = "Client"
    PEP = "Pep"


class ClientState(str, enum.Enum):  # noqa: UP042 - StrEnum would change str() and f"{}" of every member
    ACTIVE = "Active"
    DISABLED = "Disabled"
    LOCKED = "Locked"
    AUTHENTICATED = "Authenticated"


class CredentialType(str, enum.Enum):  # noqa: UP042 - StrEnum would change str() and f"{}" of every member
    SESSION = "Session"
    USERNAME_PASSWORD = "UsernamePassword"
    SYMMETRIC_KEY = "SymmetricKey"
    ASYMMETRIC_KEY = "AsymmetricKey"
    SSO = "SSO"
    CHAP = "CHAP"


# Credentials an endpoint proves by a signature (§4.7 AsymmetricKey / SymmetricKey)
SIGNED_CREDENTIALS = (CredentialType.ASYMMETRIC_KEY, CredentialType.SYMMETRIC_KEY)
# The §4.7.1 CREDENTIAL_TYPEs the server authenticates (the others, SSO and CHAP, are
# refused with E_UNSUPPORTED_AUTHENTICATION_MODE); §6.4 advertises exactly these.
SUPPORTED_CREDENTIALS = (CredentialType.USERNAME_PASSWORD, CredentialType.SESSION,
                         *SIGNED_CREDENTIALS)

# §4.6 a PEP's AUTHENTICATION_POLICY: "None" (served on its client's word) or the signed
# credential type it must prove itself with on every request made for it.
PEP_AUTH_NONE = "None"
PEP_AUTHENTICATION_POLICIES = (PEP_AUTH_NONE, *(t.value for t in SIGNED_CREDENTIALS))


class SourceKind(str, enum.Enum):  # noqa: UP042 - StrEnum would change str() and f"{}" of every member
    KMS = "Kms"
    CLIENT = "Client"
    PEP = "Pep"


@dataclass(frozen=True)
class NameValue:
    name: str
    value: str


@dataclass(frozen=True)
class Extensions:
    """VENDOR_SPECIFIC_EXTENSIONS and APPLICATION_EXTENSIONS of a key or template (§4.1,
    §4.3): named values, each section sorted by name, names unique within a section."""

    vendor: tuple[NameValue, ...] = ()
    application: tuple[NameValue, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.vendor or self.application)


@dataclass(frozen=True)
class DataSet:
    """§4.9: one data-set attribute (NAME, VALUE, SIZEOF_VALUE)."""

    name: str
    value: str
    sizeof_value: int | None = None


@dataclass(frozen=True)
class AppliedPolicy:
    """A policy that decided a delivery of a key: its kind (schema element) and id."""

    kind: str
    policy_id: str


@dataclass
class Key:
    """§4.1. `value` is the plaintext key, held in memory only while a request runs."""

    key_id: str
    state: KeyState
    cipher_type: str
    length_bits: int
    version: int
    edit_datetime: datetime
    created_at: datetime
    t_cached: int
    friendly_name: str | None = None
    t_expired: datetime | None = None
    t_disabled: datetime | None = None
    description: str | None = None
    source_kind: SourceKind = SourceKind.KMS
    source_id: str | None = None
    template_id: str | None = None
    pep_id: str | None = None
    attributes: tuple[NameValue, ...] = ()
    datasets: tuple[DataSet, ...] = ()
    realms: tuple[str, ...] = ()
    value: bytes | None = field(default=None, repr=False)
    extensions: Extensions = field(default_factory=lambda: Extensions())
    # Set on delivery only:
    hidden: bool = False  # Reference right only: identity, state and blob, no metadata
    assignment_policy_id: str | None = None  # GetKey by data: the §5.1 policy applied
    assignment_scope: str | None = None  # DataSet | Pool
    caching_type: str | None = None  # §5.6 CACHING_TYPE for the receiver
    applied_policies: tuple[AppliedPolicy, ...] = ()  # the policies that decided it
    # The KeyBlob as delivered (set by the service's delivery step; plaintext cleared when wrapped).
    blob: KeyBlob | None = field(default=None, repr=False)


@dataclass
class Endpoint:
    """A registered KMS client (§4.7) or PEP (§4.6).

    `grants` maps each realm the endpoint is associated with to its rights there
    (§4.5); `realms` lists those realms. An endpoint built with realms only (no grants)
    holds every right in them."""

    endpoint_id: str
    kind: EndpointKind
    name: str
    state: ClientState
    credential_type: CredentialType
    version: int
    realms: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    attributes: tuple[NameValue, ...] = ()
    description: str | None = None
    endpoint_type_id: str | None = None
    owner_id: str | None = None
    is_admin: bool = False
    is_km_server: bool = False  # §5.5: a peer KM server, acting as a trusted client
    failed_auth: int = 0  # wrong passwords since the last right one (lockout)
    locked_at: datetime | None = None  # when the failures locked it (domain.backoff)
    password_hash: str | None = field(default=None, repr=False)
    grants: dict[str, frozenset[Right]] = field(default_factory=dict)
    authentication_policy: str | None = None  # PEPs only: one of PEP_AUTHENTICATION_POLICIES

    def __post_init__(self) -> None:
        if not self.grants:
            self.grants = {r: ALL_RIGHTS for r in self.realms}
        self.realms = tuple(sorted(self.grants))


@dataclass(frozen=True)
class KeyTemplate:
    """§4.3 (the subset key creation inherits)."""

    template_id: str
    friendly_name: str
    cipher_type: str
    length_bits: int
    t_cached: int
    version: int
    description: str | None = None
    attributes: tuple[NameValue, ...] = ()
    realms: tuple[str, ...] = ()
    edit_datetime: datetime | None = None
    extensions: Extensions = field(default_factory=lambda: Extensions())


@dataclass(frozen=True)
class AuditMessage:
    """§6.8: a message a client or PEP pushes about a key."""

    event: str
    key_id: str | None = None
    pep_id: str | None = None
    time: datetime | None = None
    message: str | None = None


@dataclass
class AdminObject:
    """A realm, endpoint type, client or key group, or one of the six policies (§4, §5).

    `body` holds the object's attributes under their schema names (CamelCase spec
    names: {"TExpiration": "P90D", ...}); identity, state, version and realms are kept
    beside it."""

    kind: str
    object_id: str
    name: str | None
    state: str | None
    version: int
    created_at: datetime
    edit_datetime: datetime
    body: dict[str, Any]
    realms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Removal:
    """A key or an object of a custom update type (§6.12) that was deleted, or left some
    readers' sight (its realms, or their Read right): a GetUpdateList of such a reader
    after the removal's place on the change sequence lists it, so a client that fetched
    the object learns it is gone."""

    kind: str
    object_id: str
    removed_at: datetime
