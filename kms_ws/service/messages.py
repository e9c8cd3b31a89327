"""Requests and results of the §6 operations, as the service layer sees them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..domain.model import (
    AuditMessage,
    CredentialType,
    DataSet,
    Endpoint,
    EndpointKind,
    Key,
    KeyUsage,
    NameValue,
)
from ..domain.wrapping import WrappingKeyInfo
from ..security.proofs import PepProof


@dataclass(frozen=True)
class VerifiedSignature:
    """A message signature the transport verified (WS-Security: it is XML) with the key
    it looked up by the signature's key reference (KmsService.verification_key): the
    endpoint that key was registered to, the key's fingerprint (VerificationKey), the
    digest of the signed message and the last moment it is accepted (its replay-cache
    lifetime). Only verified facts: the service checks, in the request's own unit of work,
    that the signer is still a registered, active client and the key still its own."""

    signer_id: str
    key_fingerprint: str = field(repr=False)
    message_digest: str
    accept_until: datetime


@dataclass(frozen=True)
class Credential:
    """A §6.2 credential as the transport saw it, nothing looked up: a user name and
    password (in the body, a kms:Credential header or HTTP Basic), a session token, the
    CredentialValues of a credential being registered; or an AsymmetricKey / SymmetricKey
    credential proven by a verified message signature (`signature`) or by the TLS client
    certificate the HTTP front verified against the client CA (`peer_certificate`, DER);
    and a PEP's own proof (§4.6) sent with the request. The service resolves the caller
    from it (service.authentication.authenticate_caller) in the request's unit of work.
    Only the transport layer builds the proven kinds."""

    type: CredentialType
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    values: tuple[bytes, ...] = field(default=(), repr=False)  # CredentialValue (register)
    signature: VerifiedSignature | None = None
    peer_certificate: bytes | None = field(default=None, repr=False)
    pep_proof: PepProof | None = None


@dataclass(frozen=True)
class WrappingValue:
    """One registered wrapping key: a symmetric KEK or an X.509 certificate (DER)."""

    key_id: str
    symmetric_key: bytes | None = field(default=None, repr=False)
    certificate: bytes | None = None


@dataclass(frozen=True)
class RegisterWrappingValuesRequest:
    endpoint_id: str | None = None
    values: tuple[WrappingValue, ...] = ()
    retire: tuple[str, ...] = ()


@dataclass(frozen=True)
class RegisterWrappingValuesResult:
    endpoint_id: str
    keys: tuple[WrappingKeyInfo, ...]


@dataclass(frozen=True)
class RealmAssociation:
    """A realm named in a request, with the rights asked for there (endpoints only: a key
    or other object is *in* realms, without rights)."""

    realm: str
    rights: tuple[str, ...] = ()


@dataclass(frozen=True)
class RegisterEndpointRequest:
    kind: EndpointKind
    name: str
    description: str | None = None
    endpoint_type_id: str | None = None
    capabilities: tuple[str, ...] = ()
    credential: Credential | None = None
    pep_attributes: tuple[NameValue, ...] = ()
    attributes: tuple[NameValue, ...] = ()
    realms: tuple[RealmAssociation, ...] = ()
    wrapping_values: tuple[WrappingValue, ...] = ()
    # §4.6 CIM PhysicalElement / SoftwareIdentity properties, Class/Property = value
    cim_identity: tuple[NameValue, ...] = ()
    cim_identity_given: bool = False  # the request carried a CimIdentity element


@dataclass(frozen=True)
class RegisterEndpointResult:
    endpoint_id: str
    kind: EndpointKind
    endpoint_type_id: str | None = None


@dataclass(frozen=True)
class AuthenticateRequest:
    request_type: str  # Login | Validate | Logout
    credential: Credential | None = None


@dataclass(frozen=True)
class AuthenticateResult:
    client: Endpoint
    token: str | None = field(default=None, repr=False)
    expires: datetime | None = None


@dataclass(frozen=True)
class NegotiateCapabilitiesRequest:
    capabilities: tuple[str, ...]


@dataclass(frozen=True)
class GetServerCapabilitiesRequest:
    pass


@dataclass(frozen=True)
class CapabilitiesResult:
    capabilities: tuple[str, ...]


@dataclass(frozen=True)
class CreateKeyRequest:
    friendly_name: str | None = None
    template_id: str | None = None
    template_name: str | None = None
    cipher_type: str | None = None
    length_bits: int | None = None
    datasets: tuple[DataSet, ...] = ()
    pep_id: str | None = None
    attributes: tuple[NameValue, ...] = ()
    description: str | None = None
    wrapping_type: str | None = None
    realms: tuple[RealmAssociation, ...] = ()  # none: the caller's one default realm


@dataclass(frozen=True)
class KeyResult:
    key: Key


@dataclass(frozen=True)
class StoreKeyRequest:
    value: bytes = field(repr=False)  # the KeyBlob Data: the key, or wrapped per wrapping_type
    wrapping_type: str = "none"
    length: int = 0
    wrapping_key_id: str | None = None
    check_value: bytes | None = None
    inner_wrapping_type: str | None = None
    friendly_name: str | None = None
    cipher_type: str | None = None
    datasets: tuple[DataSet, ...] = ()
    pep_id: str | None = None
    attributes: tuple[NameValue, ...] = ()
    description: str | None = None
    realms: tuple[RealmAssociation, ...] = ()  # none: the caller's one default realm


@dataclass(frozen=True)
class StoreKeyResult:
    key_id: str
    version: int


@dataclass(frozen=True)
class GetKeyRequest:
    key_id: str | None = None
    if_altered_since_version: int | None = None
    friendly_name: str | None = None
    attributes: tuple[NameValue, ...] = ()
    match_attributes: tuple[NameValue, ...] = ()
    datasets: tuple[DataSet, ...] = ()
    template_id: str | None = None
    altered_since: datetime | None = None
    pep_id: str | None = None
    usage: KeyUsage | None = None
    max_keys: int = 100
    wrapping_type: str | None = None
    all_bound: bool = False  # by data sets, for Decrypt: every key bound to them


@dataclass(frozen=True)
class GetKeyResult:
    """Keys with `value` set are delivered; keys without it are metadata only."""

    keys: tuple[Key, ...]
    not_modified: bool = False
    more: bool = False


@dataclass(frozen=True)
class BindingQuery:
    """§5.1 data-set bindings (GetBindings, AdminBindings): by key, or by data set."""

    key_id: str | None = None
    dataset_name: str | None = None
    dataset_value: str | None = None
    max_records: int = 1000


@dataclass(frozen=True)
class BindingQueryResult:
    bindings: tuple[dict[str, Any], ...]  # key_id, name, value, reported_by, at
    more: bool = False


@dataclass(frozen=True)
class PushAuditMessageRequest:
    messages: tuple[AuditMessage, ...]


@dataclass(frozen=True)
class PushAuditMessageResult:
    accepted: int


@dataclass(frozen=True)
class GetRandomBytesRequest:
    number_of_bytes: int


@dataclass(frozen=True)
class GetRandomBytesResult:
    data: bytes = field(repr=False)
