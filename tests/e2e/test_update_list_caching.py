"""§5.6 T_CACHED on keys listed rather than delivered: GetUpdateList (WS-Enumeration) and
WS-Transfer Get carry the interval the caching policy gives the receiving endpoint, the
same as GetKey would deliver, whichever way the policy reaches the key (its own, its
template's, a static or dynamic key group's) and whatever the receiver's capabilities."""

from __future__ import annotations

import uuid

import pytest

from kms_ws.client import KmsClient

pytestmark = pytest.mark.e2e
DEFAULT = 3600  # a key's own T_CACHED when no caching policy applies


def _name() -> str:
    return f"n-{uuid.uuid4().hex[:10]}"


def _drain(gen) -> list:  # type: ignore[no-untyped-def,type-arg]
    items = []
    while True:
        try:
            items.append(next(gen))
        except StopIteration:
            return items


def _caching(admin: KmsClient, target_kind: str, target: str, *rules: dict) -> None:
    p = admin.admin_create("CachingPolicy", {"Name": _name(), "Rule": list(rules)})
    admin.admin_associate("CachingPolicy", p["PolicyId"], target_kind, target)
    current = admin.admin_get("CachingPolicy", p["PolicyId"])
    admin.admin_edit("CachingPolicy", {**current, "State": "Enforcing"})


def _rule(caching_type: str, seconds: int, capability: str | None = None) -> dict:
    return {"CachingType": caching_type, "TCacheInterval": seconds,
            **({"Capability": capability} if capability else {})}


@pytest.fixture()
def keys(admin: KmsClient, principal, new_realm):  # type: ignore[no-untyped-def]
    """A client alone in a fresh realm and five keys, each reached differently by a
    caching policy: none, its own, its template's, a static group's, a dynamic group's."""
    realm = new_realm()
    client, client_id = principal({realm: ()})
    tpl = admin.admin_create("KeyTemplate", {
        "FriendlyName": _name(), "KeyLength": 256, "CipherType": "2.16.840.1.101.3.4.1.46",
        "RealmAssociations": {"RealmAssociation": [{"Realm": realm}]}})
    _caching(admin, "KeyTemplate", tpl["TemplateId"], _rule("Memory", 120))
    volume = f"tape-{uuid.uuid4().hex[:6]}"
    made = {"plain": client.create_key(), "own": client.create_key(),
            "template": client.create_key(template=tpl["FriendlyName"]),
            "static": client.create_key(),
            "dynamic": client.create_key(datasets=[("volume", f"{volume}-7")])}
    _caching(admin, "Key", made["own"].key_id, _rule("Memory", 600),
             _rule("Persistent", 86400, "hasHSM"))
    static = admin.admin_create("KeyGroup", {"Name": _name(), "Type": "Static"})
    for member in ("static", "own"):  # the key's own policy outranks its group's
        admin.admin_associate("KeyGroup", static["GroupId"], "Key", made[member].key_id)
    _caching(admin, "KeyGroup", static["GroupId"], _rule("Memory", 42))
    dynamic = admin.admin_create("KeyGroup", {"Name": _name(), "Type": "Dynamic", "Rule": [
        {"Pattern": volume + r"-\d+", "Attribute": "volume"}]})
    _caching(admin, "KeyGroup", dynamic["GroupId"], _rule("Memory", 77),
             _rule("NoCache", 0, "hasHSM"))
    return client, client_id, {k: v.key_id for k, v in made.items()}


def _listed(client: KmsClient, ids: dict[str, str], **kw) -> dict[str, int]:  # type: ignore[no-untyped-def]
    by_id = {k.key_id: k.t_cached for k in _drain(client.get_update_list(max_elements=2,
                                                                          **kw))}
    return {label: by_id[key_id] for label, key_id in ids.items() if key_id in by_id}


def _delivered(client: KmsClient, ids: dict[str, str], **kw) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {label: client.get_key(key_id, **kw).t_cached for label, key_id in ids.items()}


def test_listed_keys_carry_the_t_cached_getkey_delivers(admin: KmsClient, keys) -> None:  # type: ignore[no-untyped-def]
    client, client_id, ids = keys
    expected = {"plain": DEFAULT, "own": 600, "template": 120, "static": 42, "dynamic": 77}
    assert _listed(client, ids) == expected  # over pages of two keys
    assert _delivered(client, ids) == expected
    assert {label: client.get_key_metadata(key_id).t_cached
            for label, key_id in ids.items()} == expected  # WS-Transfer Get
    # the stored attribute stays the key's own: administrators edit that one
    assert int(admin.admin_get("Key", ids["own"])["TCached"]) == DEFAULT

    # A capability of the client changes what it may cache, on the next page already.
    current = admin.admin_get("Client", client_id)
    admin.admin_edit("Client", {**current, "Capabilities": {"Capability": [{"Name": "hasHSM"}]}})
    with_hsm = {**expected, "own": 86400, "dynamic": 0}
    assert _listed(client, ids) == with_hsm == _delivered(client, ids)
    assert client.get_key_metadata(ids["own"]).t_cached == 86400


def test_a_pep_scoped_list_carries_the_peps_t_cached(admin: KmsClient, keys) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = keys
    hsm_pep = client.register_endpoint("Pep", f"pep-{uuid.uuid4().hex[:6]}",
                                       capabilities=["hasHSM"])
    for_pep = client.create_key(pep_id=hsm_pep)
    _caching(admin, "Key", for_pep.key_id, _rule("Memory", 600),
             _rule("Persistent", 86400, "hasHSM"))
    listed = {k.key_id: k.t_cached for k in _drain(client.get_update_list(
        "Keys", pep_id=hsm_pep))}
    assert listed == {for_pep.key_id: 86400}  # the PEP's capability, not the client's
    assert client.get_key(for_pep.key_id, pep_id=hsm_pep).t_cached == 86400
    assert client.get_key(for_pep.key_id).t_cached == 600  # for the client itself
