"""§5.5: KM servers are clients an administrator registered as such (Client/KmServer).
An access policy's KmServers list admits only them; its Clients and ClientGroups lists
never admit a KM server."""

from __future__ import annotations

import uuid

import pytest

from kms_ws.client import KmsClient, KmsFault

pytestmark = pytest.mark.e2e


def _name() -> str:
    return f"n-{uuid.uuid4().hex[:10]}"


def _policy(admin: KmsClient, realm: str, key_id: str, **lists: list[str]) -> dict:
    p = admin.admin_create("AccessDistributionPolicy", {
        "Name": _name(), **{k: {"Id": v} for k, v in lists.items()},
        "RealmAssociations": {"RealmAssociation": [{"Realm": realm}]}})
    admin.admin_associate("AccessDistributionPolicy", p["PolicyId"], "Key", key_id)
    cur = admin.admin_get("AccessDistributionPolicy", p["PolicyId"])
    return admin.admin_edit("AccessDistributionPolicy", {**cur, "State": "Enforcing"})


def _denied(c: KmsClient, key_id: str) -> None:
    with pytest.raises(KmsFault) as err:
        c.get_key(key_id)
    assert err.value.error_code == "E_ACCESS_POLICY"


def test_km_servers_list_admits_only_km_servers(admin: KmsClient, principal,
                                               new_realm) -> None:  # type: ignore[no-untyped-def]
    realm = new_realm()
    owner, owner_id = principal({realm: ()})
    peer, peer_id = principal({realm: ()}, KmServer=True)
    assert admin.admin_get("Client", peer_id)["KmServer"] is True
    assert admin.admin_get("Client", owner_id)["KmServer"] is False
    key = owner.create_key()
    _policy(admin, realm, key.key_id, KmServers=[peer_id])
    assert peer.get_key(key.key_id).value == key.value
    _denied(owner, key.key_id)  # an ordinary client, even the creator, is not a KM server


def test_clients_and_groups_do_not_admit_a_km_server(admin: KmsClient, principal,
                                                     new_realm) -> None:  # type: ignore[no-untyped-def]
    realm = new_realm()
    owner, owner_id = principal({realm: ()})
    prefix = f"peer-{uuid.uuid4().hex[:6]}"
    peer, _ = principal({realm: ()}, KmServer=True, name=f"{prefix}-1")
    group = admin.admin_create("ClientGroup", {
        "Name": _name(), "Type": "Dynamic", "Rule": [{"Pattern": prefix + ".*",
                                                      "Attribute": "name"}],
        "RealmAssociations": {"RealmAssociation": [{"Realm": realm}]}})
    key = owner.create_key()
    _policy(admin, realm, key.key_id, Clients=[owner_id], ClientGroups=[group["GroupId"]])
    assert owner.get_key(key.key_id).value == key.value
    _denied(peer, key.key_id)  # matches the group's rule, but is a KM server


def test_policy_lists_are_checked_against_the_flag(admin: KmsClient, principal,
                                                   new_realm) -> None:  # type: ignore[no-untyped-def]
    realm = new_realm()
    _, owner_id = principal({realm: ()})
    _, peer_id = principal({realm: ()}, KmServer=True)
    for lists in ({"Clients": [peer_id]}, {"KmServers": [owner_id]}):
        with pytest.raises(KmsFault) as err:
            admin.admin_create("AccessDistributionPolicy", {
                "Name": _name(), **{k: {"Id": v} for k, v in lists.items()}})
        assert err.value.error_code == "E_INVALID_PARAMETER"


def test_flagging_a_listed_client_as_km_server_takes_it_out_of_the_clients_list(
        admin: KmsClient, principal, new_realm) -> None:  # type: ignore[no-untyped-def]
    realm = new_realm()
    owner, owner_id = principal({realm: ()})
    key = owner.create_key()
    _policy(admin, realm, key.key_id, Clients=[owner_id])
    assert owner.get_key(key.key_id).value == key.value
    cur = admin.admin_get("Client", owner_id)
    admin.admin_edit("Client", {**cur, "KmServer": True})
    _denied(owner, key.key_id)
