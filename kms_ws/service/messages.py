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


@dataclass(frozen=True)
class Credential:
    """A §6.2 credential as presented: in the body, in a SOAP header or by HTTP Basic; or
    an AsymmetricKey / SymmetricKey credential proven by a verified message signature
    (signer_id, and the message's digest and lifetime for the replay cache) or by a TLS
    client certificate (signer_id only). Only the transport layer builds the latter."""

    type: CredentialType
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    values: tuple[bytes, ...] = field(default=(), repr=False)  # CredentialValue (register)
    signer_id: str | None = None
    signer_cert_sha256: str | None = None  # the certificate a signature was verified with
    message_digest: str | None = None
    accept_until: datetime | None = None
    pep_proof: Any = None  # security.pep_proof.PepProof: a PEP's own proof (§4.6)


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


@dataclass(frozen=True)
class RegisterEndpointResult:
    endpoint_id: str
    kind: EndpointKind


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


@dataclass(frozen=True)
class GetKeyResult:
    """Keys with `value` set are delivered; keys without it are metadata only."""

    keys: tuple[Key, ...]
    not_modified: bool = False
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
