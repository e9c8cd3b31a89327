"""kms-ws on PostgreSQL, with two nodes: two `kms-ws serve` processes, each with its own
data directory (kms-ws.json naming the same PostgreSQL database; the master key and the
response-signing key copied from the first), as two machines would run them.

What a deployment of several nodes relies on, proven across the nodes: keys made on one
are delivered by the other, a signed request accepted by one is a replay to the other
(refused and audited), copies sent to both at once are answered once, a WS-Enumeration
context opened on one is Pulled on the other, GetUpdateList tokens and removals are the
store's, and a subscription made through one node is told of a change made through the
other. Then a representative set of the SQLite suite's end-to-end tests runs again, on
the first node (the `server` and `srv` fixtures are overridden here)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from kms_ws.client import KmsClient, KmsFault, RemovedObject, UpdatedObject
from kms_ws.security.certificates import SERVER_CERT_FILE, SERVER_KEY_FILE
from kms_ws.service.notify_to import MAX_ADDRESS
from kms_ws.store import migrations
from kms_ws.store import tables as t

from ..security.test_signed_requests import _fault
from ..support import db
from ..support import wsman as W
from ..support.clients import own_realm_client
from ..support.envelopes import create_key, get_key
from ..support.postgres import PostgresCluster
from ..support.schema_check import validate_envelope
from ..support.server import ADMIN, ServerProcess, kms, running_server
from ..support.signing import register_signer, signed
from ..support.validating import ValidatingPlugin, post
from .test_wsman_custom_update_types import listed
from .test_wsman_enumeration import key_ids, pull_all
from .test_wsman_eventing import FAST, Acks, eventually

pytestmark = pytest.mark.e2e
Nodes = tuple[ServerProcess, ServerProcess]
SHARED_FILES = ("master.key", SERVER_KEY_FILE, SERVER_CERT_FILE)


@pytest.fixture(scope="module")
def nodes(postgres: PostgresCluster,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    """Node A (bootstrapped: master key, schema, admin) and node B (its own data
    directory holding copies of A's master key and signing key), one database."""
    config = {"database_url": postgres.create_database(), **FAST}
    root = tmp_path_factory.mktemp("postgresql")
    with running_server(root / "node-a", config=config) as a:
        (root / "node-b").mkdir(mode=0o700)
        for name in SHARED_FILES:
            shutil.copy2(a.data_dir / name, root / "node-b" / name)
        b = ServerProcess(root / "node-b", config=config)
        b.start()
        try:
            yield a, b
        finally:
            assert b.stop() == 0, b.stderr_text()


@pytest.fixture(scope="module")
def server(nodes: Nodes) -> ServerProcess:
    """The fixtures of conftest (admin, client, client_factory, ...) talk to node A."""
    return nodes[0]


@pytest.fixture(scope="module")
def srv(nodes: Nodes) -> ServerProcess:
    """The custom-update-type tests' server: node A."""
    return nodes[0]


def test_both_nodes_run_on_the_postgresql_store_at_the_latest_schema(nodes: Nodes) -> None:
    a, b = nodes
    for node in nodes:
        assert db.database_url(node.data_dir).startswith("postgresql+psycopg://")
        assert not (node.data_dir / "kms.db").exists(), "a SQLite store was made too"
    assert db.rows(a.data_dir, "SELECT value FROM kms_meta WHERE name = ?",
                   ("schema_version",)) == [(str(migrations.LATEST),)]
    tables = {name for (name,) in db.rows(
        b.data_dir, "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'public'")}
    assert tables == set(t.metadata.tables) - {"endpoint_realms"}  # dropped by schema 2


def test_keys_made_on_one_node_are_delivered_by_the_other(nodes: Nodes) -> None:
    a, b = nodes
    with own_realm_client(a.url, "pg") as (on_a, name, pw), \
            KmsClient(b.url, name, pw, plugins=[ValidatingPlugin()]) as on_b:
        made = on_a.create_key(friendly_name="made-on-a")
        assert on_b.get_key(made.key_id).value == made.value
        stored = on_b.store_key(bytes(range(32)), friendly_name="stored-on-b")
        assert on_a.get_key(stored).value == bytes(range(32))
        sealed = db.sealed_value(a.data_dir, stored)
        assert sealed is not None and bytes(range(32)) not in sealed
    assert db.key_row_mismatches(a.data_dir) == []


def test_a_signed_request_replayed_to_the_other_node_is_refused_and_audited(
        nodes: Nodes, admin: KmsClient) -> None:
    a, b = nodes
    signer = register_signer(admin)
    msg = signed(create_key("two-nodes"), "CreateKey", signer.key)
    r, _ = post(a.url, msg)
    assert r.status_code == 200
    before = db.snapshot(a.data_dir)
    replays = db.count(a.data_dir, "audit", actor_id=signer.endpoint_id, event="Replay")
    r, env = post(b.url, msg)
    assert r.status_code == 400 and _fault(env) == ("wsse:InvalidSecurity", "E_REPLAY")
    assert db.snapshot(a.data_dir) == before
    assert db.count(a.data_dir, "audit", actor_id=signer.endpoint_id, event="Replay",
                    result="Denied") == replays + 1


def test_copies_of_a_signed_get_key_sent_to_both_nodes_at_once_deliver_once(
        nodes: Nodes, admin: KmsClient) -> None:
    a, b = nodes
    signer = register_signer(admin)
    with KmsClient(a.url, signing_key=signer.key) as c:
        key = c.create_key(friendly_name="raced-across-nodes")
    msg = signed(get_key(key.key_id), "GetKey", signer.key)
    urls = [a.url, b.url] * 4
    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        answers = list(pool.map(lambda url: post(url, msg), urls))
    assert sorted(r.status_code for r, _ in answers) == [200] + [400] * (len(urls) - 1)
    assert all(_fault(env) == ("wsse:InvalidSecurity", "E_REPLAY")
               for r, env in answers if r.status_code == 400)
    assert db.count(a.data_dir, "audit", key_id=key.key_id, event="KeyDelivered") == 1
    assert db.count(a.data_dir, "audit", actor_id=signer.endpoint_id, event="Replay",
                    result="Denied") == len(urls) - 1


def test_an_enumeration_opened_on_one_node_is_pulled_on_the_other(nodes: Nodes) -> None:
    a, b = nodes
    with own_realm_client(a.url, "pg-enum") as (client, name, pw):
        made = [client.create_key(friendly_name=f"e{i}").key_id for i in range(5)]
        r, env = post(a.url, W.enumerate_(W.optimized(2)), auth=(name, pw))
        assert r.status_code == 200, r.text
        res = env.find("s:Body/wsen:EnumerateResponse", W.NS)
        first = key_ids(res.find("wsman:Items", W.NS))
        rest, _ = pull_all(b.url, (name, pw),
                           res.findtext("wsen:EnumerationContext", namespaces=W.NS))
        assert first + rest == made


def test_update_list_tokens_and_removals_are_the_stores(nodes: Nodes) -> None:
    """A GetUpdateList token from one node continues on the other: changes made through
    either after it, in change order, a deleted policy as a removal, in pages of two."""
    a, b = nodes
    realm = f"realm://pg-updates/{uuid.uuid4().hex[:8]}"
    name, pw = f"pgu-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    with KmsClient(a.url, *ADMIN, plugins=[ValidatingPlugin()]) as admin_a, \
            KmsClient(b.url, *ADMIN, plugins=[ValidatingPlugin()]) as admin_b:
        admin_a.admin_create("Realm", {"RealmId": realm})
        cid = admin_a.register_endpoint("Client", name, password=pw, realms=(realm,))
        admin_a.admin_associate("Client", cid, "Realm", realm, rights=["Read"])
        with KmsClient(a.url, name, pw, plugins=[ValidatingPlugin()]) as on_a, \
                KmsClient(b.url, name, pw, plugins=[ValidatingPlugin()]) as on_b:
            _, tokens = listed(on_a, "Policies")
            made = []
            for admin in (admin_a, admin_b, admin_a):
                made.append(str(admin.admin_create("RetentionPolicy", {
                    "Name": f"p-{uuid.uuid4().hex[:10]}", "TExpiration": "P8D",
                    "RealmAssociations": {"RealmAssociation": [{"Realm": realm}]}})["PolicyId"]))
            admin_b.admin_delete("RetentionPolicy", made[0])
            items, _ = listed(on_b, "Policies", tokens)
    assert [(type(i), i.object_id if isinstance(i, RemovedObject) else i.document["PolicyId"])
            for i in items] == [
        (UpdatedObject, made[1]), (UpdatedObject, made[2]), (RemovedObject, made[0])]


def test_a_subscriber_through_one_node_is_told_of_a_change_through_the_other(
        nodes: Nodes) -> None:
    a, b = nodes
    with own_realm_client(a.url, "pg-events") as (client, name, pw), \
            KmsClient(b.url, name, pw, plugins=[ValidatingPlugin()]) as on_b:
        acks = Acks()
        with client.listener(acks, inspect=validate_envelope) as listener:
            sub = client.subscribe(listener.url, expires="PT1H")
            key = on_b.create_key(friendly_name="changed-on-b")
            assert listener.wait_for(1, 15), "no UpdatePending for a change on the other node"
            notice = listener.received[0]
            assert notice.type == "AllKeys" and notice.tokens["AllKeys"] > 0
            acks.ack = True
            assert eventually(lambda: db.count(a.data_dir, "pending_updates") == 0)
            keys = list(on_b.get_update_list(tokens={"AllKeys": notice.tokens["AllKeys"] - 1}))
            assert [k.key_id for k in keys] == [key.key_id]
            on_b.unsubscribe(sub)  # made through A, ended through B
    assert db.count(a.data_dir, "subscriptions", id=sub) == 0


def test_a_session_opened_on_one_node_is_honoured_and_ended_on_the_other(
        nodes: Nodes) -> None:
    a, b = nodes
    with own_realm_client(a.url, "pg-session") as (client, _, _), \
            KmsClient(b.url, plugins=[ValidatingPlugin()]) as on_b:
        client.login()
        on_b._addressing.session_token = client._addressing.session_token
        made = on_b.create_key(friendly_name="by-session")  # the session alone, on B
        assert client.get_key(made.key_id).value == made.value
        on_b.logout()
        with pytest.raises(KmsFault) as err:
            client.get_random_bytes(1)  # on A, with the session B ended
        assert err.value.error_code == "E_INVALID_CREDENTIALS"


def test_the_longest_realm_uri_is_a_realm_on_postgresql(nodes: Nodes) -> None:
    """A RealmUri may be 390 characters (253 of domain, 128 of name): PostgreSQL, which
    enforces column lengths (SQLite does not), stores it since schema 12."""
    a, b = nodes
    realm = "realm://" + ".".join(["d" * 61] * 4)[:253] + "/" + "r" * 128
    name, pw = f"long-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    with KmsClient(a.url, *ADMIN, plugins=[ValidatingPlugin()]) as admin:
        admin.admin_create("Realm", {"RealmId": realm})
        admin.register_endpoint("Client", name, password=pw, realms=(realm,))
    with KmsClient(b.url, name, pw, plugins=[ValidatingPlugin()]) as client:
        made = client.create_key(friendly_name="in-a-long-realm")
        assert [k.key_id for k in client.get_update_list()] == [made.key_id]


@pytest.mark.parametrize("where", ["notify_to", "end_to"])
def test_an_address_longer_than_is_kept_is_refused_and_stores_nothing(
        nodes: Nodes, where: str) -> None:
    a, _ = nodes
    long = "http://127.0.0.1:9/" + "a" * MAX_ADDRESS
    with own_realm_client(a.url, "pg-long") as (client, _, _):
        before = db.count(a.data_dir, "subscriptions")
        with pytest.raises(KmsFault) as err:
            if where == "notify_to":
                client.subscribe(long)
            else:
                client.subscribe("http://127.0.0.1:9/x", end_to=long)
        assert (err.value.subcode, err.value.error_code) == (
            "wsman:InvalidParameter", "E_NOTIFY_TO_REFUSED")
        assert db.count(a.data_dir, "subscriptions") == before



def test_a_master_key_rotated_on_one_node_serves_every_node_given_its_file(
        nodes: Nodes) -> None:
    """docs/operations.md: rotation makes the new master key file where it runs; with a
    copy of it (and without the old one, which the rotation destroyed) the other node opens keys
    sealed under either and seals new ones under the new one."""
    a, b = nodes
    with own_realm_client(a.url, "pg-rotate") as (client, name, pw), \
            KmsClient(b.url, name, pw, plugins=[ValidatingPlugin()]) as on_b:
        before = client.create_key(friendly_name="sealed-before")
        assert "done:" in kms("master-key", "rotate", "--data-dir", str(a.data_dir)).stdout
        for old in b.data_dir.glob("master*.key"):
            old.unlink()
        for new in a.data_dir.glob("master*.key"):
            shutil.copy2(new, b.data_dir / new.name)
        current = db.rows(a.data_dir, "SELECT value FROM kms_meta WHERE name = ?",
                          ("master_key_current",))[0][0]
        assert on_b.get_key(before.key_id).value == before.value
        after = on_b.create_key(friendly_name="sealed-after")
        assert client.get_key(after.key_id).value == after.value
        assert db.rows(a.data_dir, "SELECT DISTINCT master_key_id FROM keys "
                       "WHERE sealed_value IS NOT NULL") == [(current,)]


# ---- the SQLite suite's end-to-end tests, run again on node A (PostgreSQL) ------------
# Collected here, these tests get this module's `server` and `srv`: keys by id, name,
# attributes and data sets, realms and their rights, policies in force, the audit trail,
# GetUpdateList pages (realm-filtered, with removals, EPR modes), WS-Enumeration as real
# clients send it, signed requests (certificate and HMAC).
from ..security.test_signed_requests import (  # noqa: E402,F401
    test_hmac_client_and_wrong_secret,
    test_signed_client_is_the_caller,
)
from .test_operations import (  # noqa: E402,F401
    test_get_key_altered_since_version_and_time,
    test_get_key_by_anded_attributes,
    test_get_key_by_datasets_returns_the_newest_binding,
    test_get_key_by_friendly_name_with_reference_attributes,
    test_keys_are_invisible_across_realms,
    test_push_audit_messages_single_and_batch,
    test_store_key_and_get_it_back,
    test_template_by_name_is_inherited,
)
from .test_policies_e2e import (  # noqa: E402,F401
    test_access_policy_denies_with_a_fault_and_an_audit_record,
    test_key_assignment_shared_pool_and_per_tape,
    test_policy_states_follow_add_associate_disassociate_delete,
    test_retention_policy_sets_dates_and_versions_the_key,
    test_static_key_group_policy_applies_to_members,
)
from .test_update_list_realms import test_update_list_follows_a_keys_realms  # noqa: E402,F401
from .test_wsman_custom_update_types import setup  # noqa: E402,F401
from .test_wsman_enumeration import (  # noqa: E402,F401
    realm_client,
    test_optimized_then_pull,
    test_plain_enumerate_then_pull_to_the_end,
)
from .test_wsman_removals import (  # noqa: E402,F401
    test_a_client_catching_up_learns_of_deleted_policies_and_templates,
    test_pages_count_removals_and_epr_modes_carry_them,
)
