"""§6.12 lost visibility: a key or an object of a custom update type that leaves a
reader's realms, or a Read right the reader loses, is a removal (kms:RemovedObject) in the
reader's next GetUpdateList from an older token — to that reader only, never to one that
still sees it or never could; a full list (token 0) holds no removals. Removals are kept
for removal_horizon_seconds: a token older than one forgotten is refused
(wsen:CannotProcessFilter, E_RESYNC_REQUIRED) and the client lists again from zero."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from kms_ws.client import Key, KmsClient, KmsFault, RemovedObject, UpdatedObject

from ..support import db
from ..support import wsman as W
from ..support.schema_check import validate_envelope
from ..support.server import ADMIN, ServerProcess, running_server
from ..support.validating import ValidatingPlugin, post
from .test_wsman_eventing import FAST, Acks, eventually

pytestmark = pytest.mark.e2e
HORIZON = 1.0  # seconds a removal is kept by the second server


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("lost") / "data", config=FAST) as s:
        yield s


@dataclass
class Reader:
    client: KmsClient
    client_id: str
    auth: tuple[str, str]


@dataclass
class World:
    admin: KmsClient
    a: str  # realms
    b: str
    c: str
    only_a: Reader  # Read in a (and nothing else but Reference in c)
    a_and_b: Reader  # Read in a and b
    outsider: Reader  # Read in c only


def realm(admin: KmsClient) -> str:
    uri = f"realm://lost/{uuid.uuid4().hex[:8]}"
    admin.admin_create("Realm", {"RealmId": uri})
    return uri


def reader(srv: ServerProcess, admin: KmsClient, grants: dict[str, list[str]],
           stack: list[KmsClient]) -> Reader:
    name, pw = f"lv-{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    first = next(iter(grants))
    cid = admin.register_endpoint("Client", name, password=pw, realms=(first,))
    for r, rights in grants.items():
        admin.admin_associate("Client", cid, "Realm", r, rights=rights)
    client = KmsClient(srv.url, name, pw, plugins=[ValidatingPlugin()])
    stack.append(client)
    return Reader(client, cid, (name, pw))


@pytest.fixture()
def world(srv: ServerProcess) -> Iterator[World]:
    stack: list[KmsClient] = []
    with KmsClient(srv.url, *ADMIN, plugins=[ValidatingPlugin()]) as admin:
        a, b, c = realm(admin), realm(admin), realm(admin)
        try:
            yield World(admin, a, b, c,
                        reader(srv, admin, {a: ["Read"], c: ["Reference"]}, stack),
                        reader(srv, admin, {a: ["Read"], b: ["Read"]}, stack),
                        reader(srv, admin, {c: ["Read"]}, stack))
        finally:
            for client in stack:
                client.close()


Item = Key | UpdatedObject | RemovedObject


def listed(r: Reader, update_type: str = "AllKeys", token: int | None = None,
           ) -> tuple[list[Item], int]:
    gen = r.client.get_update_list(update_type, {update_type: token} if token else None,
                                   max_elements=2)
    items: list[Item] = []
    while True:
        try:
            items.append(next(gen))
        except StopIteration as stop:
            return items, stop.value[update_type]


def removed(items: list[Item]) -> list[tuple[str, str]]:
    return [(i.kind, i.object_id) for i in items if isinstance(i, RemovedObject)]


def key_ids(items: list[Item]) -> list[str]:
    return [i.key_id for i in items if isinstance(i, Key)]


def retention_policy(w: World, *realms: str) -> str:
    return str(w.admin.admin_create("RetentionPolicy", {
        "Name": f"p-{uuid.uuid4().hex[:10]}", "TExpiration": "P9D",
        "RealmAssociations": {"RealmAssociation": [{"Realm": r} for r in realms]}})
        ["PolicyId"])


def test_a_key_leaving_a_realm_is_a_removal_for_its_readers_there_only(world: World) -> None:
    w = world
    key = w.admin.create_key(friendly_name="leaves-a", realms=[w.a, w.b]).key_id
    before = {r.client_id: listed(r)[1] for r in (w.only_a, w.a_and_b, w.outsider)}
    assert key in key_ids(listed(w.only_a)[0])
    w.admin.admin_disassociate("Key", key, "Realm", w.a)

    items, token = listed(w.only_a, token=before[w.only_a.client_id])
    assert removed(items) == [("Key", key)] and key_ids(items) == []
    assert isinstance(items[0], RemovedObject) and items[0].removed_at is not None
    assert listed(w.only_a, token=token)[0] == [], "told once"
    # still in b, which it reads: the key as it is now, no removal
    items, _ = listed(w.a_and_b, token=before[w.a_and_b.client_id])
    assert removed(items) == [] and key_ids(items) == [key]
    # never could see it: not told that it existed
    assert listed(w.outsider, token=before[w.outsider.client_id])[0] == []
    # a full list holds what there is, and no removals
    everything, _ = listed(w.only_a)
    assert removed(everything) == [] and key not in key_ids(everything)


def test_an_object_leaving_a_realm_is_a_removal_for_its_readers_there_only(
        world: World) -> None:
    w = world
    pid = retention_policy(w, w.a, w.b)
    before = {r.client_id: listed(r, "Policies")[1] for r in (w.only_a, w.a_and_b)}
    w.admin.admin_disassociate("RetentionPolicy", pid, "Realm", w.a)
    items, _ = listed(w.only_a, "Policies", before[w.only_a.client_id])
    assert removed(items) == [("RetentionPolicy", pid)] and len(items) == 1
    items, _ = listed(w.a_and_b, "Policies", before[w.a_and_b.client_id])
    assert removed(items) == [] and [i.document["PolicyId"] for i in items
                                     if isinstance(i, UpdatedObject)] == [pid]


def test_a_read_right_lost_is_a_removal_of_what_the_reader_no_longer_sees(
        srv: ServerProcess, world: World) -> None:
    w = world
    in_a = w.admin.create_key(friendly_name="in-a", realms=[w.a]).key_id
    in_ab = w.admin.create_key(friendly_name="in-a-and-b", realms=[w.a, w.b]).key_id
    in_b = w.admin.create_key(friendly_name="in-b", realms=[w.b]).key_id
    pid = retention_policy(w, w.a)
    _, keys_token = listed(w.a_and_b)
    _, policies_token = listed(w.a_and_b, "Policies")
    _, others_token = listed(w.only_a)
    with w.a_and_b.client.listener(Acks(), inspect=validate_envelope) as listener:
        sub = w.a_and_b.client.subscribe(listener.url)  # Read stays in b: still served
        # the right in a becomes Reference: Read lost there
        w.admin.admin_associate("Client", w.a_and_b.client_id, "Realm", w.a,
                                rights=["Reference"])
        assert listener.wait_for(1, 15), "the subscriber was not told"
        w.a_and_b.client.unsubscribe(sub)
    items, token = listed(w.a_and_b, token=keys_token)
    assert removed(items) == [("Key", in_a)], "still readable keys are not removed"
    assert listed(w.a_and_b, token=token)[0] == []
    assert removed(listed(w.a_and_b, "Policies", policies_token)[0]) == [
        ("RetentionPolicy", pid)]
    # the other reader of a lost nothing and learns nothing
    assert removed(listed(w.only_a, token=others_token)[0]) == []
    assert {in_ab, in_b} <= set(key_ids(listed(w.a_and_b)[0]))
    # and losing the realm association altogether: the same
    _, keys_token = listed(w.only_a)
    w.admin.admin_disassociate("Client", w.only_a.client_id, "Realm", w.a)
    assert sorted(removed(listed(w.only_a, token=keys_token)[0])) == sorted(
        [("Key", in_a), ("Key", in_ab)])
    assert db.count(srv.data_dir, "removal_readers") >= 3


# --- the horizon ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("horizon") / "data",
                        config={**FAST, "removal_horizon_seconds": HORIZON}) as s:
        yield s


def test_a_token_older_than_the_removals_kept_must_resync_from_zero(
        short: ServerProcess) -> None:
    with KmsClient(short.url, *ADMIN, plugins=[ValidatingPlugin()]) as admin:
        a = realm(admin)
        stack: list[KmsClient] = []
        r = reader(short, admin, {a: ["Read"]}, stack)
        try:
            kept = retention_policy(World(admin, a, a, a, r, r, r), a)
            gone = retention_policy(World(admin, a, a, a, r, r, r), a)
            _, old = listed(r, "Policies")
            admin.admin_delete("RetentionPolicy", gone)
            assert db.count(short.data_dir, "removals") >= 1
            assert eventually(lambda: db.count(short.data_dir, "removals") == 0), \
                "removals older than removal_horizon_seconds were not pruned"
            with pytest.raises(KmsFault) as err:
                listed(r, "Policies", old)
            assert (err.value.subcode, err.value.error_code) == (
                "wsen:CannotProcessFilter", "E_RESYNC_REQUIRED")
            assert "token 0" in str(err.value)
            # a raw WS-Enumeration client gets the same fault
            resp, env = post(short.url, W.enumerate_(W.optimized(10) + W.update_filter(
                "Policies", old)), auth=r.auth)
            assert env.findtext(".//{http://www.w3.org/2003/05/soap-envelope}Subcode/"
                                "{http://www.w3.org/2003/05/soap-envelope}Value") == \
                "wsen:CannotProcessFilter"
            assert env.findtext(f".//{{{W.KMS}}}ErrorCode") == "E_RESYNC_REQUIRED"
            # from zero: everything there is, and tokens that work again
            items, fresh = listed(r, "Policies")
            assert [i.document["PolicyId"] for i in items
                    if isinstance(i, UpdatedObject)] == [kept]
            assert listed(r, "Policies", fresh)[0] == []
        finally:
            for client in stack:
                client.close()
