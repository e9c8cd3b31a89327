"""WS-Eventing SubscriptionEnd: when the server can no longer serve a subscription it
removes it (with its pending notifications) and tells the subscription's wse:EndTo why.
Every message is schema-validated by the listeners (inspect) and the client plugin."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from kms_ws.client import ClientServiceListener, KmsClient, KmsFault, SubscriptionEnded

from ..support import db
from ..support.schema_check import validate_envelope
from ..support.server import ADMIN, ServerProcess, free_port, running_server
from ..support.validating import ValidatingPlugin
from .test_wsman_eventing import FAST, Acks, eventually

pytestmark = pytest.mark.e2e
WSE = "http://schemas.xmlsoap.org/ws/2004/08/eventing"
CANCELLING, FAILURE = WSE + "/SourceCancelling", WSE + "/DeliveryFailure"
GIVE_UP = 1.5  # seconds of failing delivery before the server gives up


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("subend") / "data",
                        config={**FAST, "notify_give_up_seconds": GIVE_UP},
                        security={"lock_after_failed_authentications": 3}) as s:
        yield s


@pytest.fixture()
def admin(srv: ServerProcess) -> Iterator[KmsClient]:
    with KmsClient(srv.url, *ADMIN, plugins=[ValidatingPlugin()]) as a:
        yield a


@dataclass
class Member:
    client: KmsClient
    client_id: str
    name: str
    password: str
    realm: str


@pytest.fixture()
def member(srv: ServerProcess, admin: KmsClient) -> Iterator[Member]:
    """A client with every right in a realm of its own (the administrator's too)."""
    realm = f"realm://subend/{uuid.uuid4().hex[:8]}"
    admin.admin_create("Realm", {"RealmId": realm})
    name, pw = f"se-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    cid = admin.register_endpoint("Client", name, password=pw, realms=(realm,))
    with KmsClient(srv.url, name, pw, plugins=[ValidatingPlugin()]) as c:
        yield Member(c, cid, name, pw, realm)


def count(srv: ServerProcess, table: str) -> int:
    return db.count(srv.data_dir, table)


def one_end(listener: ClientServiceListener, sub: str, status: str = CANCELLING,
            ) -> SubscriptionEnded:
    assert listener.wait_for_end(1, 15), "no SubscriptionEnd"
    time.sleep(0.3)  # a second one would arrive within a delivery pass or two
    assert [(e.subscription_id, e.status) for e in listener.ended] == [(sub, status)]
    return listener.ended[0]


def test_end_to_receives_it_when_the_client_is_disabled(srv: ServerProcess, admin: KmsClient,
                                                        member: Member) -> None:
    c = member.client
    with c.listener(Acks(), inspect=validate_envelope) as notify, \
            c.listener(Acks(), inspect=validate_envelope) as end_to:
        sub = c.subscribe(notify.url, end_to=end_to.url)
        c.create_key(friendly_name="pending-then-disabled")
        assert notify.wait_for(1, 15)
        assert count(srv, "pending_updates") >= 1
        admin.admin_edit("Client", {**admin.admin_get("Client", member.client_id),
                                    "State": "Disabled"})
        end = one_end(end_to, sub)
        assert "Disabled" in end.reason
        assert notify.ended == [], "SubscriptionEnd goes to EndTo, not NotifyTo"
        assert eventually(lambda: count(srv, "pending_updates") == 0)
        assert count(srv, "subscription_ends") == 0  # sent, and forgotten


def test_without_end_to_nothing_is_sent(srv: ServerProcess, admin: KmsClient,
                                        member: Member) -> None:
    c = member.client
    before = count(srv, "subscriptions")
    with c.listener(Acks(), inspect=validate_envelope) as listener:
        c.subscribe(listener.url, announce_end=False)
        assert count(srv, "subscriptions") == before + 1
        admin.admin_edit("Client", {**admin.admin_get("Client", member.client_id),
                                    "State": "Disabled"})
        assert count(srv, "subscriptions") == before  # removed in the same transaction
        assert count(srv, "subscription_ends") == 0  # WS-Eventing: no EndTo, no message
        time.sleep(1.0)
        assert listener.ended == []


def test_deleting_the_client_ends_its_subscriptions(srv: ServerProcess, admin: KmsClient,
                                                    member: Member) -> None:
    c = member.client
    with c.listener(Acks(), inspect=validate_envelope) as listener:
        sub = c.subscribe(listener.url)
        c.create_key(friendly_name="then-deleted")
        assert listener.wait_for(1, 15)
        c.close()
        # the client's key is in its realm, not owned by it: the client can go
        admin.admin_delete("Client", member.client_id)
        end = one_end(listener, sub)
        assert "deleted" in end.reason
        assert eventually(lambda: count(srv, "pending_updates") == 0)


def test_a_locked_client_is_told(srv: ServerProcess, member: Member) -> None:
    c = member.client
    with c.listener(Acks(), inspect=validate_envelope) as listener:
        sub = c.subscribe(listener.url)
        for _ in range(3):  # lock_after_failed_authentications
            with (
                KmsClient(srv.url, member.name, "a-wrong-password") as wrong,
                pytest.raises(KmsFault),
            ):
                wrong.get_random_bytes(8)
        end = one_end(listener, sub)
        assert "Locked" in end.reason


def test_losing_the_read_right_ends_it_but_keeping_it_elsewhere_does_not(
        srv: ServerProcess, admin: KmsClient, member: Member) -> None:
    c = member.client
    other = f"realm://subend/{uuid.uuid4().hex[:8]}"
    admin.admin_create("Realm", {"RealmId": other})
    admin.admin_associate("Client", member.client_id, "Realm", other, rights=["Read"])
    with c.listener(Acks(), inspect=validate_envelope) as listener:
        sub = c.subscribe(listener.url)  # made under both realms
        # Read stays in `other`: the subscription is still served
        admin.admin_associate("Client", member.client_id, "Realm", member.realm,
                              rights=["Reference"])
        admin.admin_disassociate("Client", member.client_id, "Realm", other)
        # ... until Read is gone from every realm it subscribed under
        end = one_end(listener, sub)
        assert "Read right" in end.reason and member.realm in end.reason
        with pytest.raises(KmsFault) as err:  # and it is gone
            c.renew_subscription(sub)
        assert err.value.subcode == "wse:InvalidMessage"


def test_read_kept_in_one_realm_keeps_the_subscription(srv: ServerProcess, admin: KmsClient,
                                                       member: Member) -> None:
    c = member.client
    other = f"realm://subend/{uuid.uuid4().hex[:8]}"
    admin.admin_create("Realm", {"RealmId": other})
    admin.admin_associate("Client", member.client_id, "Realm", other, rights=["Read"])
    before = count(srv, "subscriptions")
    with c.listener(Acks(), inspect=validate_envelope) as listener:
        sub = c.subscribe(listener.url)
        admin.admin_disassociate("Client", member.client_id, "Realm", member.realm)
        assert count(srv, "subscriptions") == before + 1
        c.renew_subscription(sub)  # still there
        key = admin.create_key(friendly_name="in-other", realms=[other])
        assert key.realms == [other]
        assert listener.wait_for(1, 15), "still told about the realm it reads"
        assert listener.ended == []
        c.unsubscribe(sub)


def test_an_administrator_removing_a_subscription_tells_the_subscriber(
        srv: ServerProcess, admin: KmsClient, member: Member) -> None:
    c = member.client
    with c.listener(Acks(), inspect=validate_envelope) as listener:
        own = c.subscribe(listener.url)
        c.unsubscribe(own)  # the subscriber's own Unsubscribe: nothing to tell
        sub = c.subscribe(listener.url)
        admin.unsubscribe(sub)
        end = one_end(listener, sub)
        assert "administrator" in end.reason and ADMIN[0] in end.reason


def test_delivery_that_keeps_failing_gives_up_with_delivery_failure(
        srv: ServerProcess, member: Member) -> None:
    c = member.client
    nobody = f"http://127.0.0.1:{free_port()}/gone"  # nothing listens there
    with c.listener(Acks(), inspect=validate_envelope) as end_to:
        sub = c.subscribe(nobody, end_to=end_to.url)
        c.create_key(friendly_name="undeliverable")
        end = one_end(end_to, sub, FAILURE)
        assert "could not be delivered" in end.reason
        assert eventually(lambda: count(srv, "pending_updates") == 0)
        with pytest.raises(KmsFault) as err:
            c.renew_subscription(sub)
        assert err.value.subcode == "wse:InvalidMessage"


def test_a_listener_that_answers_without_acknowledging_is_not_given_up(
        srv: ServerProcess, member: Member) -> None:
    c = member.client
    with c.listener(Acks(), inspect=validate_envelope) as listener:
        sub = c.subscribe(listener.url)
        c.create_key(friendly_name="not-yet-acknowledged")
        assert listener.wait_for(1, 15)
        time.sleep(GIVE_UP + 1.0)
        assert listener.ended == [] and count(srv, "pending_updates") >= 1
        c.unsubscribe(sub)


@pytest.mark.parametrize("end_to", ["http://169.254.169.254/latest/meta-data/",
                                    "http://127.0.0.3:9/x", "ftp://127.0.0.1/x",
                                    "http://user:secret@127.0.0.1:9/x"])
def test_an_end_to_elsewhere_is_refused_and_nothing_stored(srv: ServerProcess,
                                                           member: Member, end_to: str) -> None:
    before = count(srv, "subscriptions")
    with pytest.raises(KmsFault) as err:
        member.client.subscribe("http://127.0.0.1:9/ok", end_to=end_to)
    assert (err.value.subcode, err.value.error_code) == ("wsman:InvalidParameter",
                                                         "E_NOTIFY_TO_REFUSED")
    assert "EndTo" in str(err.value)
    assert count(srv, "subscriptions") == before


def test_a_client_without_read_anywhere_cannot_subscribe(srv: ServerProcess,
                                                         admin: KmsClient) -> None:
    realm = f"realm://subend/{uuid.uuid4().hex[:8]}"
    admin.admin_create("Realm", {"RealmId": realm})
    name, pw = f"se-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    cid = admin.register_endpoint("Client", name, password=pw, realms=(realm,))
    admin.admin_associate("Client", cid, "Realm", realm, rights=["Reference"])
    before = count(srv, "subscriptions")
    with (
        KmsClient(srv.url, name, pw, plugins=[ValidatingPlugin()]) as c,
        pytest.raises(KmsFault) as err,
    ):
        c.subscribe("http://127.0.0.1:9/x")
    assert (err.value.subcode, err.value.error_code) == ("wsman:AccessDenied",
                                                         "E_PERMISSION_DENIED")
    assert count(srv, "subscriptions") == before


def test_a_pep_scoped_subscription_ends_with_its_pep(srv: ServerProcess, admin: KmsClient,
                                                      member: Member) -> None:
    c = member.client
    pep = c.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:6]}")
    with c.listener(Acks(), inspect=validate_envelope) as listener:
        scoped = c.subscribe(listener.url, "Keys", pep_id=pep)
        unscoped = c.subscribe(listener.url)
        admin.admin_delete("Pep", pep)
        end = one_end(listener, scoped)
        assert pep in end.reason and "deleted" in end.reason
        c.renew_subscription(unscoped)  # the client's other subscription is still served
        c.unsubscribe(unscoped)


def end_rows(srv: ServerProcess, sub: str) -> list[tuple[int, str | None]]:
    """(attempts, next attempt time) of the SubscriptionEnd queued for `sub`."""
    return [(int(a), n) for a, n in db.rows(
        srv.data_dir, "SELECT attempts, next_attempt_at FROM subscription_ends "
        "WHERE subscription_id = ?", (sub,))]


def test_an_end_to_that_is_down_is_retried_until_it_takes_it_across_a_restart(
        tmp_path: pytest.TempPathFactory) -> None:
    """SubscriptionEnd is retried with UpdatePending's backoff, durably: an EndTo that is
    down when the subscription ends, and stays down over a restart of the server (and its
    deliverer), still gets it once it listens again."""
    port = free_port()
    end_to = f"http://127.0.0.1:{port}/kms-client"  # nothing listens there yet
    with running_server(tmp_path / "data",  # type: ignore[operator]
                        config={**FAST, "notify_give_up_seconds": 600}) as s, \
            KmsClient(s.url, *ADMIN, plugins=[ValidatingPlugin()]) as admin:
        realm = f"realm://subend/{uuid.uuid4().hex[:8]}"
        admin.admin_create("Realm", {"RealmId": realm})
        name, pw = f"se-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
        cid = admin.register_endpoint("Client", name, password=pw, realms=(realm,))
        with KmsClient(s.url, name, pw, plugins=[ValidatingPlugin()]) as c:
            sub = c.subscribe(f"http://127.0.0.1:{free_port()}/kms-client", end_to=end_to)
            admin.admin_edit("Client", {**admin.admin_get("Client", cid), "State": "Disabled"})
            tried = f"SubscriptionEnd to subscription {sub}: "
            assert eventually(lambda: s.stderr_text().count(tried) >= 2), "not tried twice"
            s.stop()
            s.start()  # a new deliverer: the queued message is in the store
            with c.listener(Acks(), inspect=validate_envelope, port=port) as listener:
                assert listener.url == end_to
                end = one_end(listener, sub)
            assert "Disabled" in end.reason
            assert eventually(lambda: end_rows(s, sub) == [])  # sent, and forgotten


def test_an_end_to_that_stays_down_is_given_up_after_notify_give_up_seconds(
        srv: ServerProcess, admin: KmsClient, member: Member) -> None:
    nobody = f"http://127.0.0.1:{free_port()}/kms-client"
    sub = member.client.subscribe(nobody)  # EndTo = NotifyTo
    admin.admin_edit("Client", {**admin.admin_get("Client", member.client_id),
                                "State": "Disabled"})
    assert eventually(lambda: end_rows(srv, sub) == []), "not given up"
    tried = [line for line in srv.stderr_text().splitlines()
             if f"SubscriptionEnd to subscription {sub}: " in line]
    assert len(tried) >= 2 and "given up after" in tried[-1], tried  # retried, then not
