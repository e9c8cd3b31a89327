"""Requests and results of the WS-Management operations (Identify, WS-Transfer,
WS-Enumeration for §6.12 GetUpdateList, WS-Eventing for §6.11 UpdatePending, §6.10
GetStatus), as the service layer sees them."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..domain.model import Key, Removal


class DeliveryMode(enum.Enum):
    """How UpdatePending notifications reach a subscriber (DSP0226 §10.2.9; their URIs:
    kms_ws.wsman.eventing). Stored by name."""

    PUSH = "Push"
    PUSH_WITH_ACK = "PushWithAck"


@dataclass(frozen=True)
class IdentifyRequest:
    pass


@dataclass(frozen=True)
class IdentifyResult:
    product_vendor: str
    product_version: str


@dataclass(frozen=True)
class ResourceName:
    """The resource a request names, in the service's terms: the object kind (None: none
    this service has) and the name as the request gave it, for messages. kms_ws.wsman
    maps ResourceURIs to kinds and back."""

    kind: str | None
    given: str = ""


@dataclass(frozen=True)
class TransferRequest:
    resource: ResourceName
    selectors: dict[str, str] | None
    options: dict[str, str] = field(default_factory=dict)
    body: Any = None  # Create/Put: the decoded kms request


@dataclass(frozen=True)
class AdminDocument:
    """An administered object as its schema element's fields (service.admin documents)."""

    kind: str
    document: dict[str, Any]


@dataclass(frozen=True)
class TransferResult:
    kind: str  # the object kind (its resource: kms_ws.wsman.resource_uris)
    object: Any  # Key, Endpoint, ... (what the resource kind encodes)
    selectors: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class UpdateFilter:
    """§6.12: Type, Scope (a client or PEP id), the token for the type (0: everything);
    or `equals` (SelectorFilter dialect: key selectors ANDed)."""

    type: str = "AllKeys"
    client_id: str | None = None
    pep_id: str | None = None
    token: int = 0
    equals: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class EnumerateRequest:
    resource: ResourceName
    filter: UpdateFilter
    mode: str = ""
    expires_seconds: float | None = None
    expires_at: datetime | None = None
    optimize: bool = False
    max_elements: int = 1
    total_estimate: bool = False
    action: str = ""  # the request's wsa:Action: the Operation a PEP's proof names

    @property
    def pep_id(self) -> str | None:  # the PEP the request is made for (audit records)
        return self.filter.pep_id


@dataclass(frozen=True)
class PullRequest:
    context: str
    max_elements: int = 1
    total_estimate: bool = False  # wsman:RequestTotalItemsCountEstimate: items left


@dataclass(frozen=True)
class ContextRequest:
    """Renew, GetStatus and Release of an enumeration context."""

    context: str
    expires_seconds: float | None = None
    expires_at: datetime | None = None


@dataclass
class UpdatePage:
    """A page of keys (or objects) in change order. The soap layer may send fewer items than it got
    (MaxCharacters, MaxEnvelopeSize): it asks `context_after(n)` for the context that
    resumes after the first n items; None means the enumeration is complete."""

    # keys, or a custom type's objects and removals
    items: list[tuple[int, Key | AdminDocument | Removal]]
    more: bool
    mode: str
    expires: datetime
    token_type: str
    high: int
    context_after: Callable[[int], str | None]
    caller_id: str = ""
    acknowledges: bool = False  # reaching the end acknowledges UpdatePending (§6.11)
    pep_id: str | None = None
    total: int | None = None


@dataclass(frozen=True)
class ContextStatus:
    context: str | None
    expires: datetime


@dataclass(frozen=True)
class SubscribeRequest:
    notify_to: str
    mode: DeliveryMode | str  # str: a mode this service does not know, as asked for
    filter: UpdateFilter
    expires_seconds: float | None = None
    expires_at: datetime | None = None
    end_to: str | None = None  # wse:EndTo: where SubscriptionEnd goes (None: not sent)
    action: str = ""  # the request's wsa:Action: the Operation a PEP's proof names

    @property
    def pep_id(self) -> str | None:  # the PEP the request is made for (audit records)
        return self.filter.pep_id


@dataclass(frozen=True)
class SubscriptionResult:
    subscription_id: str
    expires: datetime


@dataclass(frozen=True)
class SubscriptionRequest:
    """Renew (with a new expiry) or Unsubscribe."""

    subscription_id: str
    expires_seconds: float | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class EndpointStatusRequest:
    subscription_id: str
    target_of_interest: str | None = None
    locale: str | None = None


@dataclass(frozen=True)
class EndpointStatus:
    endpoint_id: str | None = None
    locale: str | None = None
    operating_mode: str | None = None
    keys_in_use: int | None = None
    rekey_status: str | None = None
    status: tuple[tuple[str, str], ...] = ()
