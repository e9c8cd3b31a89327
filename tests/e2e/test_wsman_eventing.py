"""§6.11 UpdatePending and §6.10 GetStatus as server-initiated calls: WS-Eventing
subscriptions, a client-side listener, repetition with backoff until acknowledged, pending
notifications that survive a restart, and GetStatus through the admin CLI."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
import zeep

from kms_ws.client import KmsClient, KmsFault, UpdateNotice
from kms_ws.resources import schema_dir, wsdl_dir
from kms_ws.soap.wsdl import build_client_wsdl

from ..support import db
from ..support.clients import own_realm_client
from ..support.schema_check import validate_envelope
from ..support.server import ADMIN, ServerProcess, kms, running_server
from ..support.validating import ValidatingPlugin

pytestmark = pytest.mark.e2e
FAST = {"notify_retry_seconds": 0.2, "notify_retry_max_seconds": 0.5,
        "notify_poll_seconds": 0.05}


@pytest.fixture(scope="module")
def events_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("events") / "data", config=FAST) as srv:
        yield srv


@pytest.fixture()
def member(events_server: ServerProcess) -> Iterator[tuple[KmsClient, str, str]]:
    """A client alone in its realm (notifications of other tests do not reach it)."""
    with own_realm_client(events_server.url, "events") as member:
        yield member


class Acks:
    """The listener's answer: acknowledge (with the tokens received) once told to."""

    def __init__(self) -> None:
        self.ack = False

    def __call__(self, notice: UpdateNotice) -> dict[str, int] | None:
        return dict(notice.tokens) if self.ack else None


def pending(srv: ServerProcess) -> int:
    return db.count(srv.data_dir, "pending_updates")


def eventually(check, timeout: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_update_pending_repeats_until_acknowledged(events_server: ServerProcess,
                                                   member) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = member
    acks = Acks()
    with client.listener(acks, inspect=validate_envelope) as listener:
        sub = client.subscribe(listener.url, expires="PT1H")
        assert sub.startswith("uuid:")
        key = client.create_key(friendly_name="changed")
        assert listener.wait_for(1, 15), "no UpdatePending within seconds of the change"
        notice = listener.received[0]
        assert notice.type == "AllKeys" and notice.client_id and notice.tokens["AllKeys"] > 0
        assert listener.wait_for(3, 15), "not repeated while unacknowledged"
        assert all(n.tokens == notice.tokens for n in listener.received)
        acks.ack = True
        assert eventually(lambda: pending(events_server) == 0)
        # the acknowledged tokens bring the client to exactly this key
        keys = list(client.get_update_list(tokens={"AllKeys": notice.tokens["AllKeys"] - 1}))
        assert [k.key_id for k in keys] == [key.key_id]
        client.unsubscribe(sub)


def test_get_update_list_reaching_the_tokens_acknowledges(events_server: ServerProcess,
                                                          member) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = member
    with client.listener(Acks(), inspect=validate_envelope) as listener:
        sub = client.subscribe(listener.url)
        client.create_key(friendly_name="to-fetch")
        assert listener.wait_for(1, 15)
        assert pending(events_server) >= 1
        gen = client.get_update_list()
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                tokens = stop.value
                break
        assert tokens["AllKeys"] >= listener.received[0].tokens["AllKeys"]
        assert eventually(lambda: pending(events_server) == 0)
        client.unsubscribe(sub)


def test_pending_notifications_survive_a_restart(events_server: ServerProcess, member) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = member
    with client.listener(Acks(), inspect=validate_envelope) as listener:
        sub = client.subscribe(listener.url)
        client.create_key(friendly_name="before-restart")
        assert listener.wait_for(1, 15)
        assert events_server.stop() == 0
        seen = len(listener.received)
        events_server.start()
        assert listener.wait_for(seen + 1, 15), "not delivered after the restart"
        client.unsubscribe(sub)
    assert eventually(lambda: pending(events_server) == 0)  # unsubscribe dropped it


def test_subscription_lifecycle_and_faults(events_server: ServerProcess, member) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = member
    before = db.count(events_server.data_dir, "subscriptions")
    sub = client.subscribe("http://127.0.0.1:9/nowhere", expires="PT10M")
    client.renew_subscription(sub)
    assert db.count(events_server.data_dir, "subscriptions") == before + 1
    client.unsubscribe(sub)
    assert db.count(events_server.data_dir, "subscriptions") == before
    with pytest.raises(KmsFault) as err:
        client.unsubscribe(sub)
    assert err.value.subcode == "wse:InvalidMessage"
    with pytest.raises(KmsFault) as err:
        client.subscribe("http://127.0.0.1:9/x", mode="http://example.com/CarrierPigeon")
    assert err.value.subcode == "wse:DeliveryModeRequestedUnavailable"
    with pytest.raises(KmsFault) as err:
        client.subscribe("http://127.0.0.1:9/x", expires="P400D")
    assert err.value.subcode == "wse:InvalidExpirationTime"
    assert db.count(events_server.data_dir, "subscriptions") == before


def test_others_cannot_touch_a_subscription(events_server: ServerProcess, member,  # type: ignore[no-untyped-def]
                                            ) -> None:
    client, _, _ = member
    sub = client.subscribe("http://127.0.0.1:9/nowhere")
    name, pw = f"ev-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    with KmsClient(events_server.url, *ADMIN) as admin:
        admin.register_endpoint("Client", name, password=pw)
    with KmsClient(events_server.url, name, pw, plugins=[ValidatingPlugin()]) as other:
        with pytest.raises(KmsFault) as err:
            other.unsubscribe(sub)
        assert err.value.subcode == "wse:InvalidMessage"
        with pytest.raises(KmsFault) as err:
            other.get_endpoint_status(sub)
        assert (err.value.subcode, err.value.error_code) == ("wsman:AccessDenied",
                                                             "E_PERMISSION_DENIED")
    client.unsubscribe(sub)


def test_admin_asks_an_endpoint_for_its_status_through_the_cli(events_server: ServerProcess,
                                                               member) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = member
    asked: list[dict] = []

    def status(req):  # type: ignore[no-untyped-def]
        asked.append(req)
        return {"OperatingMode": "Online", "KeysInUse": 3, "RekeyStatus": "Idle",
                "Locale": req["Locale"] or "en-US", "Status": {"firmware": "1.2.3"}}

    with client.listener(Acks(), status, inspect=validate_envelope) as listener:
        sub = client.subscribe(listener.url)
        out = kms("endpoint-status", sub, "--locale", "de-DE", "--url", events_server.url,
                  "--user", ADMIN[0], "--password-stdin", stdin=ADMIN[1] + "\n")
        doc = json.loads(out.stdout)
        assert doc["OperatingMode"] == "Online" and doc["KeysInUse"] == 3
        assert doc["Locale"] == "de-DE" and doc["Status"] == {"firmware": "1.2.3"}
        assert asked and asked[0]["Locale"] == "de-DE"
        client.unsubscribe(sub)
    # an endpoint that does not answer: a fault, not a hang or a trace
    sub = client.subscribe("http://127.0.0.1:9/nowhere")
    bad = kms("endpoint-status", sub, "--url", events_server.url, "--user", ADMIN[0],
              "--password-stdin", stdin=ADMIN[1] + "\n", check=False)
    assert bad.returncode == 1 and "E_ENDPOINT_UNREACHABLE" in bad.stderr
    assert "Traceback" not in bad.stderr
    client.unsubscribe(sub)


def test_client_service_wsdl_is_generated_and_usable() -> None:
    committed = (wsdl_dir() / "kms-client.wsdl").read_bytes()
    assert committed == build_client_wsdl(schema_dir()), \
        "wsdl/kms-client.wsdl drifted: run kms-ws wsdl --client-service -o wsdl/kms-client.wsdl"
    z = zeep.Client(str(wsdl_dir() / "kms-client.wsdl"))
    ops = z.wsdl.bindings["{urn:kms-ws:p1619.3:1}KmsClientSoap12Binding"]._operations
    assert set(ops) == {"UpdatePending", "GetStatus"}


def test_expired_subscriptions_stop_and_are_removed(events_server: ServerProcess,
                                                    member) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = member
    before = db.count(events_server.data_dir, "subscriptions")
    with client.listener(Acks(), inspect=validate_envelope) as listener:
        sub = client.subscribe(listener.url, expires="PT2S")
        assert db.count(events_server.data_dir, "subscriptions") == before + 1
        assert eventually(lambda: db.count(events_server.data_dir, "subscriptions") == before)
        # the server ended it: WS-Eventing SubscriptionEnd (schema-validated by inspect),
        # sent once the removal has committed
        assert listener.wait_for_end(1, 15), "no SubscriptionEnd"
        assert [(e.subscription_id, e.status) for e in listener.ended] == [
            (sub, "http://schemas.xmlsoap.org/ws/2004/08/eventing/SourceCancelling")]
        assert "expired" in listener.ended[0].reason
        client.create_key(friendly_name="after-expiry")
        assert pending(events_server) == 0  # nobody left to tell
        assert listener.received == []



def test_an_invalid_status_is_not_relayed(events_server: ServerProcess, member) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = member
    with client.listener(Acks(), lambda req: {"OperatingMode": " " * 3},
                         inspect=lambda data: None) as listener:
        sub = client.subscribe(listener.url)
        with (
            KmsClient(events_server.url, *ADMIN, plugins=[ValidatingPlugin()]) as admin,
            pytest.raises(KmsFault) as err,
        ):
            admin.get_endpoint_status(sub)
        assert err.value.error_code == "E_ENDPOINT_UNREACHABLE"
        client.unsubscribe(sub)


def test_an_edit_of_a_key_is_notified_too(events_server: ServerProcess) -> None:
    with (
        KmsClient(events_server.url, *ADMIN, plugins=[ValidatingPlugin()]) as admin,
        admin.listener(Acks(), inspect=validate_envelope) as listener,
    ):
        sub = admin.subscribe(listener.url)
        key = admin.create_key(friendly_name="to-edit")
        assert listener.wait_for(1, 15)
        created = listener.received[-1].tokens["AllKeys"]
        doc = admin.admin_get("Key", key.key_id)
        admin.admin_edit("Key", {**doc, "Description": "edited"})
        assert eventually(lambda: listener.received[-1].tokens["AllKeys"] > created)
        admin.unsubscribe(sub)


def test_realm_association_and_policy_changes_are_notified(events_server: ServerProcess) -> None:
    """'When a key or policy relevant to a subscriber changes': a key joining the
    subscriber's realm, and an edit of a policy enforced on that key."""
    realm = f"realm://events/{uuid.uuid4().hex[:8]}"
    name, pw = f"ev-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    with KmsClient(events_server.url, *ADMIN, plugins=[ValidatingPlugin()]) as admin, \
            admin.listener(Acks(), inspect=validate_envelope) as listener:
        key = admin.create_key(friendly_name="elsewhere")  # before the realm exists
        admin.admin_create("Realm", {"RealmId": realm})  # the administrator gets every right
        admin.register_endpoint("Client", name, password=pw, realms=(realm,))
        with KmsClient(events_server.url, name, pw, plugins=[ValidatingPlugin()]) as client:
            sub = client.subscribe(listener.url)
            admin.admin_edit("Key", {**admin.admin_get("Key", key.key_id),
                                     "Description": "not yours"})
            time.sleep(1.0)
            assert listener.received == [], "told about a key it cannot read"
            admin.admin_associate("Key", key.key_id, "Realm", realm)
            assert listener.wait_for(1, 15), "no UpdatePending when the key joined the realm"
            joined = listener.received[-1].tokens["AllKeys"]
            fetched = list(client.get_update_list(tokens={"AllKeys": joined - 1}))
            assert [k.key_id for k in fetched] == [key.key_id]
            assert realm in fetched[0].realms
            policy = admin.admin_create("CachingPolicy", {
                "Name": f"n-{uuid.uuid4().hex[:10]}",
                "Rule": [{"CachingType": "Memory", "TCacheInterval": 600}]})
            admin.admin_associate("CachingPolicy", policy["PolicyId"], "Key", key.key_id)
            current = admin.admin_get("CachingPolicy", policy["PolicyId"])
            admin.admin_edit("CachingPolicy", {**current, "State": "Enforcing"})
            assert eventually(lambda: listener.received[-1].tokens["AllKeys"] > joined), \
                "no UpdatePending when a policy on the key changed"
            changed = listener.received[-1].tokens["AllKeys"]
            [again] = client.get_update_list(tokens={"AllKeys": joined})
            assert again.key_id == key.key_id and again.version > fetched[0].version
            assert changed > joined
            client.unsubscribe(sub)


def test_disabling_a_client_ends_its_subscriptions(events_server: ServerProcess) -> None:
    realm = f"realm://events/{uuid.uuid4().hex[:8]}"
    name, pw = f"ev-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    with KmsClient(events_server.url, *ADMIN, plugins=[ValidatingPlugin()]) as admin, \
            admin.listener(Acks(), inspect=validate_envelope) as listener:
        admin.admin_create("Realm", {"RealmId": realm})  # the administrator gets every right
        admin.register_endpoint("Client", name, password=pw, realms=(realm,))
        with KmsClient(events_server.url, name, pw, plugins=[ValidatingPlugin()]) as client:
            sub = client.subscribe(listener.url, expires="PT1H")
        assert db.count(events_server.data_dir, "subscriptions", id=sub) == 1
        doc = admin.admin_get("Client", name)
        admin.admin_edit("Client", {**doc, "State": "Disabled"})
        assert eventually(lambda: listener.ended != [])
        assert [(e.subscription_id, e.status) for e in listener.ended] == [
            (sub, "http://schemas.xmlsoap.org/ws/2004/08/eventing/SourceCancelling")]
        assert "Disabled" in listener.ended[0].reason
        # (other tests' subscriptions on this shared server may expire meanwhile: count its own)
        assert db.count(events_server.data_dir, "subscriptions", id=sub) == 0
