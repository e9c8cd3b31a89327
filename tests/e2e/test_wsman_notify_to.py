"""NotifyTo restrictions (server-side request forgery): a subscriber may only have the
server call back the address it subscribed from, or networks an administrator allowed;
checked at Subscribe and again before every delivery."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kms_ws.client import KmsClient, KmsFault

from ..support import db
from ..support.clients import own_realm_client
from ..support.schema_check import validate_envelope
from ..support.server import ADMIN, ServerProcess, running_server
from ..support.validating import ValidatingPlugin
from .test_wsman_eventing import FAST, Acks, eventually

pytestmark = pytest.mark.e2e
ALLOWED = "127.0.0.2"  # a loopback address that is not the one the client connects from


def configure(data: Path, networks: list[str]) -> None:
    path = data / "kms-ws.json"
    doc = json.loads(path.read_text()) if path.exists() else {}
    doc.update(FAST)
    doc["security"] = {**doc.get("security", {}), "notify_to_networks": networks}
    path.write_text(json.dumps(doc))


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("notify") / "data"
    data.mkdir(parents=True)
    configure(data, [f"{ALLOWED}/32", "192.0.2.0/24"])
    with running_server(data) as srv:
        yield srv


@pytest.fixture()
def client(guarded: ServerProcess) -> Iterator[KmsClient]:
    with own_realm_client(guarded.url, "notify") as (c, _, _):
        yield c


@pytest.mark.parametrize("notify_to", [
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata service
    "http://10.1.2.3:8080/admin",  # an internal network not configured
    "https://[fd00::1]/hook",
    "http://127.0.0.3:9/x",  # loopback, but neither the caller's address nor configured
    "http://no-such-host.invalid/x",
    "ftp://127.0.0.1/x",
])
def test_a_notify_to_elsewhere_is_refused_and_nothing_stored(guarded: ServerProcess,
                                                             client: KmsClient,
                                                             notify_to: str) -> None:
    before = db.count(guarded.data_dir, "subscriptions")
    with pytest.raises(KmsFault) as err:
        client.subscribe(notify_to)
    assert (err.value.subcode, err.value.error_code) == ("wsman:InvalidParameter",
                                                         "E_NOTIFY_TO_REFUSED")
    assert "NotifyTo" in str(err.value)
    assert db.count(guarded.data_dir, "subscriptions") == before


def test_own_address_and_configured_networks_are_accepted(guarded: ServerProcess,
                                                          client: KmsClient) -> None:
    before = db.count(guarded.data_dir, "subscriptions")
    for url in ("http://127.0.0.1:9/own", "http://localhost:9/own", "http://192.0.2.7:9/lab",
                f"http://{ALLOWED}:9/x"):
        subscription = client.subscribe(url)
        assert db.count(guarded.data_dir, "subscriptions") == before + 1
        client.unsubscribe(subscription)
        assert db.count(guarded.data_dir, "subscriptions") == before


def test_delivery_rechecks_and_ends_a_subscription_no_longer_allowed(
        guarded: ServerProcess, client: KmsClient) -> None:
    with client.listener(Acks(), host=ALLOWED, inspect=validate_envelope) as listener:
        client.subscribe(listener.url)
        client.create_key(friendly_name="allowed")
        assert listener.wait_for(1, 15), "an allowed NotifyTo is delivered to"
        before = db.count(guarded.data_dir, "subscriptions")
        # the administrator narrows the allowed networks: the stored subscription's
        # NotifyTo is now neither the subscriber's address nor configured
        assert guarded.stop() == 0
        configure(guarded.data_dir, [])
        guarded.start()
        seen = len(listener.received)
        client.create_key(friendly_name="refused")
        assert eventually(lambda: db.count(guarded.data_dir, "subscriptions") == before - 1)
        assert db.count(guarded.data_dir, "pending_updates") == 0
        assert len(listener.received) == seen, "the server called a refused address"
    assert guarded.stop() == 0
    configure(guarded.data_dir, [f"{ALLOWED}/32", "192.0.2.0/24"])
    guarded.start()


def test_a_host_name_is_delivered_to_at_its_checked_address(guarded: ServerProcess,
                                                            client: KmsClient) -> None:
    """NotifyTo and EndTo by name ('localhost'): resolved, checked, and called at the
    checked address (the listener listens on 127.0.0.1 only)."""
    with client.listener(Acks(), inspect=validate_envelope) as listener:
        by_name = listener.url.replace("127.0.0.1", "localhost")
        sub = client.subscribe(by_name, end_to=by_name)
        client.create_key(friendly_name="by-name")
        assert listener.wait_for(1, 15), "no UpdatePending to a NotifyTo given by name"
        with KmsClient(guarded.url, *ADMIN, plugins=[ValidatingPlugin()]) as admin:
            admin.unsubscribe(sub)
        assert listener.wait_for_end(1, 15), "no SubscriptionEnd to an EndTo given by name"
        assert listener.ended[0].subscription_id == sub
