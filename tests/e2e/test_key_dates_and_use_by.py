"""§4.1 against a live server: dates change a key's state everywhere, and the change is
announced (the change sequence, UpdatePending) once, by the deliverer, across restarts;
realm associations do not move VERSION; USE_BY drives UpdatePending and a PEP's update
list (issue 15, points 4-6).

Dates are moved, never waited out: T_EXPIRED / T_DISABLED are set just past the server's
clock (the test runs on the same machine), or a moment ahead where the deliverer has to
notice the date passing; the only waits are bounded waits for asynchronous delivery."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest

from kms_ws.client import KmsClient, KmsFault, UpdateNotice

from ..support import db
from ..support.clients import own_realm_client
from ..support.schema_check import validate_envelope
from ..support.server import ADMIN, ServerProcess, running_server
from ..support.validating import ValidatingPlugin

pytestmark = pytest.mark.e2e
FAST = {"notify_retry_seconds": 0.2, "notify_retry_max_seconds": 0.5,
        "notify_poll_seconds": 0.05}


@pytest.fixture(scope="module")
def dates_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("dates") / "data", config=FAST) as srv:
        yield srv


@pytest.fixture()
def admin(dates_server: ServerProcess) -> Iterator[KmsClient]:
    with KmsClient(dates_server.url, *ADMIN, plugins=[ValidatingPlugin()]) as a:
        yield a


def server_now() -> datetime:
    """The server's clock (same machine), as the store keeps times: naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def eventually(check: Callable[[], bool], timeout: float = 20.0) -> bool:
    """A bounded wait for asynchronous delivery (never an assertion on time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def ack_all(notice: UpdateNotice) -> dict[str, int]:
    return dict(notice.tokens)


def set_dates(admin: KmsClient, key_id: str, **dates: datetime) -> dict:  # type: ignore[type-arg]
    doc = admin.admin_get("Key", key_id)
    return admin.admin_edit("Key", {**doc, **{name: at.strftime("%Y-%m-%dT%H:%M:%SZ")
                                              for name, at in dates.items()}})


def realm_of(admin: KmsClient, client_name: str) -> str:
    """The one realm of a client made by own_realm_client."""
    [assoc] = admin.admin_get("Client", client_name)["RealmAssociations"]["RealmAssociation"]
    return str(assoc["Realm"])


def changes_of(srv: ServerProcess, key_id: str) -> int:
    return db.count(srv.data_dir, "changes", object_id=key_id)


def updates(client: KmsClient, since: int = 0, **kw: object) -> dict:  # type: ignore[type-arg]
    return {k.key_id: k for k in client.get_update_list(tokens={"AllKeys": since}
                                                         if since else None, **kw)}


# ---- 4. dates change the state everywhere -------------------------------------------------

def test_past_dates_show_the_state_in_every_read(dates_server: ServerProcess,
                                                 admin: KmsClient) -> None:
    with own_realm_client(dates_server.url, "dates") as (client, _, _):
        expired = client.create_key(friendly_name="expired")
        disabled = client.create_key(friendly_name="disabled")
        set_dates(admin, expired.key_id, TExpired=server_now() - timedelta(seconds=1))
        set_dates(admin, disabled.key_id, TDisabled=server_now() - timedelta(seconds=1))

        assert client.get_key(expired.key_id, usage="Decrypt").state == "Expired"
        with pytest.raises(KmsFault) as err:
            client.get_key(disabled.key_id, usage="Decrypt")
        assert err.value.error_code == "E_KEY_STATE" and "Disabled" in str(err.value)
        # WS-Transfer Get
        assert client.get_key_metadata(expired.key_id).state == "Expired"
        assert client.get_key_metadata(disabled.key_id).state == "Disabled"
        # GetUpdateList (WS-Enumeration Enumerate / Pull)
        listed = updates(client)
        assert listed[expired.key_id].state == "Expired"
        assert listed[disabled.key_id].state == "Disabled"
        # AdminGet agrees
        assert admin.admin_get("Key", expired.key_id)["State"] == "Expired"
        assert admin.admin_get("Key", disabled.key_id)["State"] == "Disabled"


def test_a_date_passing_is_a_change_announced_once(dates_server: ServerProcess,
                                                   admin: KmsClient) -> None:
    """The deliverer records the transition on the change sequence and tells the
    subscriber; the claim holds across a restart (no second announcement)."""
    with own_realm_client(dates_server.url, "dates") as (client, _, _), \
            client.listener(ack_all, inspect=validate_envelope) as listener:
        sub = client.subscribe(listener.url)
        key = client.create_key(friendly_name="expires-soon")
        edited = set_dates(admin, key.key_id, TExpired=server_now() + timedelta(seconds=5))
        assert eventually(lambda: changes_of(dates_server, key.key_id) == 2)
        edit_token = int(db.rows(dates_server.data_dir,
                                 "SELECT max(seq) FROM changes WHERE object_id = ?",
                                 (key.key_id,))[0][0])
        # the date passes: a third change, and an UpdatePending beyond the edit's token
        assert eventually(lambda: any(n.tokens.get("AllKeys", 0) > edit_token
                                      for n in listener.received)), \
            "no UpdatePending when T_EXPIRED passed"
        assert changes_of(dates_server, key.key_id) == 3
        since_edit = updates(client, edit_token)
        assert list(since_edit) == [key.key_id]
        seen = since_edit[key.key_id]
        assert seen.state == "Expired"
        # the date was in the attributes already: VERSION does not move
        assert seen.version == edited["Version"]

        # after a restart, a second key's date passes: announced once as well, and the
        # first key's transition is not announced again
        assert dates_server.stop() == 0
        dates_server.start()
        later = client.create_key(friendly_name="expires-after-restart")
        set_dates(admin, later.key_id, TDisabled=server_now() + timedelta(seconds=5))
        assert eventually(lambda: changes_of(dates_server, later.key_id) == 3), \
            "the transition was not announced after a restart"
        assert updates(client, edit_token)[later.key_id].state == "Disabled"
        assert changes_of(dates_server, key.key_id) == 3
        assert changes_of(dates_server, later.key_id) == 3
        client.unsubscribe(sub)


# ---- 5. realm associations do not move VERSION --------------------------------------------

def test_realm_association_keeps_the_version_and_is_listed(dates_server: ServerProcess,
                                                           admin: KmsClient) -> None:
    with own_realm_client(dates_server.url, "dates") as (client, _, _), \
            own_realm_client(dates_server.url, "dates") as (other, other_name, _):
        key = client.create_key(friendly_name="joins")
        before = admin.admin_get("Key", key.key_id)
        assert key.key_id not in updates(other)
        other_realm_id = realm_of(admin, other_name)
        token = int(db.rows(dates_server.data_dir, "SELECT max(seq) FROM changes")[0][0])
        admin.admin_associate("Key", key.key_id, "Realm", other_realm_id)
        after = admin.admin_get("Key", key.key_id)
        assert after["Version"] == before["Version"]
        assert after["EditDateTime"] == before["EditDateTime"]
        # the join is a change readers learn of: listed after the older token
        seen = updates(other, token)[key.key_id]
        assert other_realm_id in seen.realms and seen.version == key.version
        admin.admin_disassociate("Key", key.key_id, "Realm", other_realm_id)
        assert admin.admin_get("Key", key.key_id)["Version"] == before["Version"]


# ---- 6. USE_BY drives updates ------------------------------------------------------------

@contextmanager
def delivered_by_a_reference_only_client(srv: ServerProcess, admin: KmsClient) -> Iterator[
        tuple[KmsClient, str, KmsClient, str, str]]:
    """(owner, owner's name, b, b's PEP, key id): the owner made the key in its realm;
    client B may only Reference that realm (its Read right is in a realm of its own) and
    delivered the key to its PEP (USE_BY_PEPS; made for no PEP)."""
    with own_realm_client(srv.url, "dates") as (owner, owner_name, _):
        own = f"realm://dates/{uuid.uuid4().hex[:8]}"
        admin.admin_create("Realm", {"RealmId": own})
        name, pw = f"b-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
        admin.admin_create("Client", {"Name": name, "RealmAssociations": {
            "RealmAssociation": [{"Realm": realm_of(admin, owner_name), "Right": ["Reference"]},
                                 {"Realm": own, "Right": ["Read", "Create"]}]}},
                           password=pw)
        key = owner.create_key(friendly_name="used-by-a-pep")
        with KmsClient(srv.url, name, pw, plugins=[ValidatingPlugin()]) as b:
            # Reference only: delivered just wrapped for a PEP of B's in that realm, under
            # a KEK an administrator registered for the PEP (15.1)
            pep = b.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:6]}",
                                      realms=[realm_of(admin, owner_name)])
            admin.register_wrapping_values({"pep-kek": os.urandom(32)}, endpoint_id=pep)
            b.get_key(key.key_id, pep_id=pep)
            yield owner, owner_name, b, pep, key.key_id


def test_clients_and_peps_that_received_a_key_are_told(dates_server: ServerProcess,
                                                       admin: KmsClient) -> None:
    """A change to the key reaches B's subscriptions (its own and its PEP's) whatever
    B's right in the key's realm."""
    with delivered_by_a_reference_only_client(dates_server, admin) as (_, _, b, pep, key_id), \
            b.listener(ack_all, inspect=validate_envelope) as listener:
        scoped = b.subscribe(listener.url, "Keys", pep_id=pep)
        mine = b.subscribe(listener.url)
        token = int(db.rows(dates_server.data_dir, "SELECT max(seq) FROM changes")[0][0])
        admin.admin_edit("Key", {**admin.admin_get("Key", key_id), "Description": "changed"})
        assert eventually(lambda: {n.pep_id for n in listener.received
                                   if max(n.tokens.values()) > token} == {pep, None}), \
            "a client or PEP that received the key was not told it changed"
        b.unsubscribe(scoped)
        b.unsubscribe(mine)


def test_a_peps_update_list_names_keys_delivered_to_it(dates_server: ServerProcess,
                                                       admin: KmsClient) -> None:
    """The PEP's update list (through a client with Read in the key's realm) names the key
    delivered to it, not only keys made for it."""
    with delivered_by_a_reference_only_client(dates_server, admin) as (
            owner, owner_name, _, pep, key_id):
        unrelated = owner.create_key(friendly_name="never-delivered-to-the-pep")
        admin.admin_associate("Pep", pep, "Client", owner_name)
        listed = {k.key_id for k in owner.get_update_list("Keys", pep_id=pep)}
        assert key_id in listed and unrelated.key_id not in listed
