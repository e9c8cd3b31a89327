"""§6.3 NegotiateCapabilities, §6.4 GetServerCapabilities, §6.8 PushAuditMessage (its
quota), §6.9 GetRandomBytes (its bounds), §6.10 GetStatus (GetEndpointStatus, through a
fake of the server's calls to client endpoints) — on the in-memory store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from kms_ws.domain.capabilities import OPERATIONS as ADVERTISED
from kms_ws.domain.capabilities import SERVER_CAPABILITIES
from kms_ws.domain.errors import (
    AuditQuotaExceeded,
    InternalError,
    InvalidParameter,
    InvalidSubscription,
    KeyNotFound,
    PermissionDenied,
)
from kms_ws.domain.model import AuditMessage
from kms_ws.domain.records import Subscription
from kms_ws.service import messages as m
from kms_ws.service.dispatch import OPERATIONS as DISPATCHED
from kms_ws.service.ws_messages import (
    DeliveryMode,
    EndpointStatus,
    EndpointStatusRequest,
    SubscribeRequest,
    UpdateFilter,
)

from .conftest import Harness


def test_server_capabilities_and_negotiation(h: Harness) -> None:
    assert h.run("GetServerCapabilities", m.GetServerCapabilitiesRequest()).capabilities \
        == SERVER_CAPABILITIES
    offered = ("cipher:no-such", "operation:GetKey", "credential:Session", "operation:GetKey")
    got = h.run("NegotiateCapabilities", m.NegotiateCapabilitiesRequest(offered))
    assert got.capabilities == ("operation:GetKey", "credential:Session")


def test_every_client_operation_is_advertised() -> None:
    """The capability list names each operation a client can call (GetBindings was left
    out), and none it cannot: the dispatch table less the administrators' operations."""
    for_clients = {op for op in DISPATCHED
                   if not op.startswith("Admin") and op != "GetEndpointStatus"}
    assert set(ADVERTISED) == for_clients
    assert {f"operation:{op}" for op in for_clients} <= set(SERVER_CAPABILITIES)


def test_random_bytes_within_bounds(h: Harness) -> None:
    assert len(h.run("GetRandomBytes", m.GetRandomBytesRequest(32)).data) == 32
    limit = h.settings.max_random_bytes
    assert len(h.run("GetRandomBytes", m.GetRandomBytesRequest(limit)).data) == limit
    for n in (0, -1, limit + 1):
        h.check_refused(InvalidParameter, "GetRandomBytes", m.GetRandomBytesRequest(n),
                  code="E_INVALID_PARAMETER")


def push(n: int, key_id: str | None = None, text: str = "hello") -> m.PushAuditMessageRequest:
    return m.PushAuditMessageRequest(tuple(AuditMessage("Used", key_id=key_id, message=text)
                                           for _ in range(n)))


def test_pushed_messages_are_stored_as_reported(h: Harness) -> None:
    key = h.run("CreateKey", m.CreateKeyRequest()).key
    assert h.run("PushAuditMessage", push(2, key.key_id)).accepted == 2
    assert len(h.audit(operation="PushAuditMessage", result="Reported",
                       key_id=key.key_id)) == 2
    # a key the caller has no right on is not found, and nothing is stored
    h.check_refused(KeyNotFound, "PushAuditMessage", push(1, key.key_id), "bob")


def test_push_audit_quota_refuses_the_whole_call_and_counts_refusals() -> None:
    h = Harness(push_audit_messages_per_minute=3)
    alice = h.add("alice")
    h.run("PushAuditMessage", push(2))
    exc = h.check_refused(AuditQuotaExceeded, "PushAuditMessage", push(2),
                    code="E_AUDIT_QUOTA_EXCEEDED", counted=("quotas",))
    assert "nothing was stored" in exc.reason
    assert h.store.tables.quotas[alice].refused == 1
    assert len(h.audit(operation="PushAuditMessage", result="Reported")) == 2
    # later refusals in the minute are counted, not each recorded
    for _ in range(3):
        try:
            h.run("PushAuditMessage", push(2))
        except AuditQuotaExceeded:
            pass
        else:
            raise AssertionError("over the quota")
    denied = h.audit(operation="PushAuditMessage", result="Denied")
    assert len(denied) == 1
    # the next minute: a fresh quota, and the counted refusals become one record
    h.clock.now += timedelta(minutes=1)
    assert h.run("PushAuditMessage", push(3)).accepted == 3
    summary = h.audit(operation="PushAuditMessage", result="Denied")[1:]
    assert len(summary) == 1 and "4 calls were refused" in summary[0]["message"]


@dataclass
class Outbound:
    """The server's calls to client endpoints (wsman.delivery.ClientServiceCaller): what
    it was asked, what the endpoint answers."""

    answer: EndpointStatus
    asked: list[tuple[Subscription, EndpointStatusRequest]] = field(default_factory=list)

    def get_status(self, sub: Subscription, req: EndpointStatusRequest) -> EndpointStatus:
        self.asked.append((sub, req))
        return self.answer


def test_endpoint_status_asks_the_subscribed_endpoint_for_administrators() -> None:
    outbound = Outbound(EndpointStatus(operating_mode="Normal", keys_in_use=3))
    h = Harness(outbound=outbound)
    alice = h.add("alice")
    h.add("root", admin=True)
    sub = h.run("Eventing.Subscribe", SubscribeRequest(
        "http://192.0.2.10:8080/n", DeliveryMode.PUSH, UpdateFilter("AllKeys"))).subscription_id
    status = h.run("GetEndpointStatus", EndpointStatusRequest(sub), "root")
    assert (status.endpoint_id, status.operating_mode, status.keys_in_use) == (
        alice, "Normal", 3)
    assert [s.subscription_id for s, _ in outbound.asked] == [sub]
    h.check_refused(PermissionDenied, "GetEndpointStatus", EndpointStatusRequest(sub))
    h.check_refused(InvalidSubscription, "GetEndpointStatus", EndpointStatusRequest("uuid:none"),
              "root")
    assert len(outbound.asked) == 1  # no call for a refused request


def test_endpoint_status_without_outbound_calls_is_an_internal_fault() -> None:
    h = Harness()
    h.add("alice")
    h.add("root", admin=True)
    sub = h.run("Eventing.Subscribe", SubscribeRequest(
        "http://192.0.2.10:8080/n", DeliveryMode.PUSH, UpdateFilter("AllKeys"))).subscription_id
    h.check_refused(InternalError, "GetEndpointStatus", EndpointStatusRequest(sub), "root")
